"""Celery tasks of the agent. Each takes ids, and calls one service.

Every task is idempotent, so late acknowledgement, redelivery and retries are safe. Retry
backoff stays far below the broker's visibility timeout (1 h), or Redis would deliver the task
again while it waits.
"""

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from agent.services import tickets_requeue_stale, triage_ticket_run


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def triage_ticket(self: Task, ticket_id: int) -> None:
    """Triage one ticket into a stored proposal (see ``triage_ticket_run``)."""
    triage_ticket_run(
        ticket_id=ticket_id, attempt=self.request.retries + 1, task_id=self.request.id or ""
    )


@shared_task(acks_late=True, ignore_result=True)
def requeue_stale_tickets() -> None:
    """Periodic (Celery beat, every minute): recover tickets whose triage was lost."""
    tickets_requeue_stale()
