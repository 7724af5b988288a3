"""Celery tasks of the agent. Each takes ids, loads rows, and calls one service."""

from celery import shared_task

from tickets.models import Ticket
from tickets.services import ticket_transition


@shared_task(acks_late=True, reject_on_worker_lost=True)
def triage_ticket(ticket_id: int) -> None:
    """Triage one ticket. Idempotent: a ticket already past ``new`` is left alone."""
    ticket_transition(
        ticket_id=ticket_id, to=Ticket.Status.QUEUED, allowed_from={Ticket.Status.NEW}
    )
