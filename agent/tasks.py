"""Celery tasks of the agent. Each takes ids, and calls one service.

Every task is idempotent, so late acknowledgement, redelivery and retries are safe. Retry
backoff stays far below the broker's visibility timeout (1 h), or Redis would deliver the task
again while it waits.
"""

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from agent.services import tickets_requeue_stale, triage_ticket_run
from agent.workflows.support_triage.model_store import offline_model_retrain_if_due


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


@shared_task(acks_late=True, ignore_result=True)
def retrain_offline_model(*, only_if_due: bool = False) -> None:
    """Retrain the offline model (skipped when its data did not change). Periodic (beat, every
    10 minutes) with ``only_if_due``: once enough new reviews or history arrived."""
    offline_model_retrain_if_due(min_new_rows=settings.TRIAGE_RETRAIN_AFTER if only_if_due else 1)
