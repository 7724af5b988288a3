"""Writes on tickets. Every channel (API, admin, import, demo seed) ingests through here."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from tickets.models import Category, Channel, Ticket, TicketNote
from tickets.signals import ticket_ingested

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    ticket: Ticket
    created: bool
    # For a known external_id: the fields this request sent that differ from the stored
    # ticket (a retry sends none; anything else is another ticket under a reused id).
    differs: tuple[str, ...] = ()


@transaction.atomic
def ticket_ingest(
    *,
    subject: str,
    body: str,
    requester_email: str,
    external_id: str | None = None,
    channel: str = Channel.API,
) -> IngestResult:
    """Stores a new ticket, or returns the existing one with the same ``external_id``.

    Idempotent under concurrency: the database's unique constraint decides which of two
    simultaneous requests creates the row; the other returns it. Raises Django's
    ``ValidationError`` for invalid fields, storing nothing.
    """
    external_id = external_id or None
    sent = {
        "subject": subject.strip(),
        "body": body,
        "requester_email": requester_email.strip(),
        "channel": channel,
    }
    if external_id and (existing := Ticket.objects.filter(external_id=external_id).first()):
        return _existing(existing, sent)
    ticket = Ticket(
        external_id=external_id,
        subject=subject.strip(),
        body=body,
        requester_email=requester_email.strip(),
        channel=channel,
    )
    # Uniqueness and constraints are the database's job (below), race-free.
    ticket.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            ticket.save()
    except IntegrityError:
        if external_id is None:
            raise
        return _existing(Ticket.objects.get(external_id=external_id), sent)
    logger.info("ticket ingested", extra={"ticket_id": ticket.pk, "channel": channel})
    ticket_ingested.send(sender=Ticket, ticket=ticket)
    return IngestResult(ticket=ticket, created=True)


def _existing(ticket: Ticket, sent: dict[str, str]) -> IngestResult:
    differs = tuple(field for field, value in sent.items() if getattr(ticket, field) != value)
    if differs:
        logger.warning(
            "ingest with known external_id and different %s", ", ".join(differs),
            extra={"ticket_id": ticket.pk},
        )  # fmt: skip
    return IngestResult(ticket=ticket, created=False, differs=differs)


def ticket_transition(*, ticket_id: int, to: str, allowed_from: set[str]) -> bool:
    """Moves a ticket to status ``to`` if it is in one of ``allowed_from``; True if it moved.

    A single conditional UPDATE, so concurrent workers cannot both move the same ticket.
    """
    moved = Ticket.objects.filter(pk=ticket_id, status__in=allowed_from).update(
        status=to, status_changed_at=timezone.now(), updated_at=timezone.now()
    )
    return moved == 1


@transaction.atomic
def ticket_record_history(
    *,
    external_id: str,
    subject: str,
    body: str,
    requester_email: str,
    category: Category,
    urgency: str,
    note: str = "",
    channel: str = Channel.EMAIL,
) -> IngestResult:
    """Stores an already-resolved, human-labelled ticket (with its resolution note) as history
    for retrieval, without triggering triage. Idempotent on ``external_id``: a known ticket is
    returned unchanged."""
    ticket, created = Ticket.objects.get_or_create(
        external_id=external_id,
        defaults={
            "subject": subject.strip()[: Ticket.SUBJECT_MAX_LENGTH],
            "body": body,
            "requester_email": requester_email,
            "channel": channel,
            "category": category,
            "urgency": urgency,
            "status": Ticket.Status.RESOLVED,
        },
    )
    if created and note:
        TicketNote.objects.create(ticket=ticket, body=note, source=TicketNote.Source.STAFF)
    return IngestResult(ticket=ticket, created=created)


def ticket_claim_for_triage(*, ticket_id: int, stale_before: datetime) -> bool:
    """Moves a ticket to ``triaging`` if it is waiting for triage, or if a previous claim is
    older than ``stale_before`` (its worker was lost). True for exactly one of any number of
    concurrent callers: a single conditional UPDATE decides."""
    waiting = models.Q(status__in=[Ticket.Status.NEW, Ticket.Status.QUEUED])
    stale = models.Q(status=Ticket.Status.TRIAGING, status_changed_at__lt=stale_before)
    now = timezone.now()
    moved = Ticket.objects.filter(waiting | stale, pk=ticket_id).update(
        status=Ticket.Status.TRIAGING, status_changed_at=now, updated_at=now
    )
    return moved == 1
