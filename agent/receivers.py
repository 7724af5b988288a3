"""Receivers for the signals of the apps below (connected in ``AgentConfig.ready``)."""

from typing import Any

from celery.signals import worker_init
from django.dispatch import receiver

from agent.services import offline_model_retrain_soon, triage_enqueue
from agent.workflows.support_triage import model_store
from tickets.models import Ticket
from tickets.signals import history_recorded, ticket_ingested


@receiver(ticket_ingested, dispatch_uid="agent.enqueue_triage")
def enqueue_triage_on_ingest(sender: type[Ticket], ticket: Ticket, **kwargs: Any) -> None:
    """Once the ingest transaction commits, queue the ticket for triage."""
    triage_enqueue(ticket_id=ticket.pk)


@receiver(history_recorded, dispatch_uid="agent.retrain_on_history")
def retrain_on_history(sender: type[Ticket], count: int, **kwargs: Any) -> None:
    """New labelled history: retrain the offline model once the transaction commits."""
    offline_model_retrain_soon()


@worker_init.connect(dispatch_uid="agent.warm_offline_model")
def warm_offline_model(**kwargs: Any) -> None:
    """Before a worker takes its first task, build the offline judgement (the corpus models take
    tens of seconds to train): tickets wait in the queue meanwhile, not in a started task that
    the stale-ticket sweeper could take for a hung one. Whatever the backend: the workflow's
    own checks (``suspects_injection``) use it on every run, Claude's too, and a first run
    that trained it would spend its timeout doing so."""
    model_store.offline_model_current()
