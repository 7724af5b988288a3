"""Ingest enqueues the Celery task after commit; the task runs for real."""

import time

import pytest

from tickets.models import Ticket
from tickets.services import ticket_ingest


@pytest.mark.django_db
def test_task_is_enqueued_only_after_commit(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ticket = ticket_ingest(subject="s", body="b", requester_email="a@example.com").ticket
    assert len(callbacks) == 1
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.NEW  # nothing ran inside the transaction

    for callback in callbacks:
        callback()
    ticket.refresh_from_db()
    assert ticket.status != Ticket.Status.NEW


@pytest.mark.postgres
@pytest.mark.redis
def test_real_worker_picks_up_an_ingested_ticket(celery_worker, intake_api) -> None:  # type: ignore[no-untyped-def]
    response = intake_api.post(
        "/api/tickets/",
        {
            "subject": "Export fails",
            "body": "CSV export times out.",
            "requester_email": "a@example.com",
        },
    )
    assert response.status_code == 201

    ticket = Ticket.objects.get(pk=response.json()["id"])
    deadline = time.monotonic() + 20
    while ticket.status == Ticket.Status.NEW and time.monotonic() < deadline:
        time.sleep(0.1)
        ticket.refresh_from_db()
    assert ticket.status != Ticket.Status.NEW
