"""Ingest and history services, used by every channel."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.factories import CategoryFactory, TicketFactory
from tickets.models import Ticket, TicketNote
from tickets.services import ticket_ingest, ticket_record_history, ticket_transition

pytestmark = pytest.mark.django_db


def test_ingest_validates_and_stores_nothing_on_error() -> None:
    with pytest.raises(ValidationError) as error:
        ticket_ingest(subject="ok", body="b", requester_email="nope", channel="fax")

    assert set(error.value.message_dict) == {"requester_email", "channel"}
    assert not Ticket.objects.exists()


def test_ingest_strips_subject_and_treats_blank_external_id_as_none() -> None:
    result = ticket_ingest(
        subject="  Hello  ", body="", requester_email="a@example.com", external_id=""
    )

    assert result.created
    assert result.ticket.subject == "Hello"
    assert result.ticket.external_id is None


def test_ingest_sends_signal_only_for_new_tickets(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks() as callbacks:
        ticket_ingest(subject="s", body="b", requester_email="a@example.com", external_id="x1")
        ticket_ingest(subject="s", body="b", requester_email="a@example.com", external_id="x1")

    assert len(callbacks) == 1


def test_database_enforces_the_invariants() -> None:
    """Constraints hold even for code that bypasses the services."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(subject="", requester_email="a@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(subject="s", requester_email="a@example.com", urgency="whenever")
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(subject="s", requester_email="a@example.com", status="resolved")
    TicketFactory(external_id="dup")
    with pytest.raises(IntegrityError), transaction.atomic():
        TicketFactory(external_id="dup")
    # Many tickets may have no external id.
    TicketFactory(external_id=None)
    TicketFactory(external_id=None)


def test_transition_moves_only_from_allowed_states() -> None:
    ticket = TicketFactory()

    assert ticket_transition(ticket_id=ticket.pk, to="queued", allowed_from={"new"})
    assert not ticket_transition(ticket_id=ticket.pk, to="queued", allowed_from={"new"})
    ticket.refresh_from_db()
    assert ticket.status == "queued"


def test_record_history_is_idempotent_and_does_not_trigger_triage(
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    category = CategoryFactory()
    row = {
        "external_id": "h-1",
        "subject": "Old",
        "body": "b",
        "requester_email": "a@example.com",
        "category": category,
        "urgency": "low",
        "note": "Fixed it.",
    }

    with django_capture_on_commit_callbacks() as callbacks:
        first = ticket_record_history(**row)
        second = ticket_record_history(**row)

    assert (first.created, second.created) == (True, False)
    assert first.ticket.status == Ticket.Status.RESOLVED
    assert TicketNote.objects.get().body == "Fixed it."
    assert callbacks == []
