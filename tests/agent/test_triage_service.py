"""Triage as a service and a task: idempotent, concurrent-safe, recoverable, switchable."""

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from agent.models import AgentRun, TriageProposal
from agent.selectors import agent_settings_get
from agent.services import tickets_requeue_stale, triage_ticket_run
from agent.tasks import requeue_stale_tickets, triage_ticket
from agent.workflows.support_triage.definition import SUPPORT_TRIAGE
from tests.agent.scripted import ScriptedBackend, submit
from tickets.models import Ticket
from tickets.services import ticket_transition


def test_the_task_runs_the_offline_agent(new_ticket: Ticket) -> None:
    triage_ticket.delay(new_ticket.pk)

    proposal = TriageProposal.objects.get(ticket=new_ticket)
    assert proposal.outcome == "proposal"
    assert proposal.category.slug == "billing"
    assert proposal.run.backend == "offline"
    assert proposal.similar_tickets[0]["category"] == "billing"


def test_running_the_task_twice_gives_one_proposal(new_ticket: Ticket) -> None:
    triage_ticket.delay(new_ticket.pk)
    triage_ticket.delay(new_ticket.pk)

    assert TriageProposal.objects.filter(ticket=new_ticket).count() == 1
    assert AgentRun.objects.filter(ticket=new_ticket).count() == 1


def test_the_database_allows_one_active_proposal_per_ticket(new_ticket: Ticket) -> None:
    from django.db import IntegrityError, transaction

    triage_ticket_run(ticket_id=new_ticket.pk)
    first = TriageProposal.objects.get()
    run = AgentRun.objects.create(
        ticket=new_ticket,
        workflow="support-triage",
        backend="x",
        status="finished",
        outcome="safe_stop",
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        TriageProposal.objects.create(ticket=new_ticket, run=run, outcome="safe_stop")
    first.status = "rejected"
    first.save()
    TriageProposal.objects.create(ticket=new_ticket, run=run, outcome="safe_stop")  # now fine


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_deliveries_give_one_proposal(history) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import TicketFactory

    ticket = TicketFactory(subject="Charged twice", body="Refund the second charge please.")
    barrier = threading.Barrier(4)
    results: list[object] = []

    def deliver() -> None:
        barrier.wait()
        results.append(triage_ticket_run(ticket_id=ticket.pk))
        connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result is not None for result in results) == 1
    assert TriageProposal.objects.filter(ticket=ticket).count() == 1
    assert AgentRun.objects.filter(ticket=ticket).count() == 1


def test_kill_switch_sends_tickets_to_manual_triage_without_a_model(new_ticket: Ticket) -> None:
    agent_settings = agent_settings_get()
    agent_settings.agent_enabled = False
    agent_settings.save()
    backend = ScriptedBackend()  # would fail the test if asked anything

    proposal = triage_ticket_run(ticket_id=new_ticket.pk, backend=backend)

    assert proposal is not None
    assert proposal.outcome == "safe_stop"
    assert proposal.error == "the agent is switched off (kill switch)"
    assert backend.requests == []
    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.NEEDS_MANUAL_TRIAGE
    steps = list(proposal.run.steps.order_by("position"))
    assert [step.kind for step in steps] == ["intent", "error", "output"]
    assert steps[1].summary.startswith("Kill switch is off")
    assert proposal.run.prompt_version == SUPPORT_TRIAGE.prompt_version()


def test_a_crash_hands_the_ticket_back_for_a_retry(new_ticket: Ticket) -> None:
    def explode(request):  # type: ignore[no-untyped-def]
        raise KeyError("bug in a backend")

    with pytest.raises(KeyError):
        triage_ticket_run(ticket_id=new_ticket.pk, backend=ScriptedBackend(explode))

    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.QUEUED
    assert triage_ticket_run(ticket_id=new_ticket.pk) is not None  # the retry succeeds


def test_the_sweeper_recovers_a_lost_triage(
    new_ticket: Ticket,
    settings,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    """A worker died mid-run: the ticket is stuck in triaging with a running run."""
    long_ago = timezone.now() - timedelta(seconds=settings.TRIAGE_STALE_AFTER_SECONDS + 5)
    Ticket.objects.filter(pk=new_ticket.pk).update(status="triaging", status_changed_at=long_ago)
    lost = AgentRun.objects.create(ticket=new_ticket, workflow="support-triage", backend="offline")
    fresh = Ticket.objects.create(subject="Fresh", requester_email="a@example.com", status="queued")

    with django_capture_on_commit_callbacks(execute=True):
        requeued = tickets_requeue_stale()

    assert requeued == [new_ticket.pk]  # the fresh one is left alone
    lost.refresh_from_db()
    assert lost.status == AgentRun.Status.ABANDONED
    proposal = TriageProposal.objects.get(ticket=new_ticket)  # eager: requeued and triaged
    assert proposal.outcome == "proposal"
    fresh.refresh_from_db()
    assert fresh.status == "queued"
    assert tickets_requeue_stale() == []  # nothing left to recover


def test_the_periodic_task_and_command_call_the_sweeper(
    new_ticket: Ticket,
    capsys,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    from django.core.management import call_command

    Ticket.objects.filter(pk=new_ticket.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("requeue_stale")
    assert f"Requeued 1 stale tickets: #{new_ticket.pk}" in capsys.readouterr().out
    with django_capture_on_commit_callbacks(execute=True):
        requeue_stale_tickets.delay()
    assert TriageProposal.objects.filter(ticket=new_ticket).count() == 1


def test_beat_runs_the_sweeper_every_minute(settings) -> None:  # type: ignore[no-untyped-def]
    entry = settings.CELERY_BEAT_SCHEDULE["requeue-stale-tickets"]
    assert entry == {"task": "agent.tasks.requeue_stale_tickets", "schedule": 60.0}


def test_a_rerun_that_finds_its_proposal_settles_the_ticket_without_a_model_call(
    new_ticket: Ticket, settings
) -> None:
    """The sweeper requeued a ticket whose proposal had just been stored: the rerun must not
    strand it in triaging (to be requeued, and paid for, every period)."""
    proposal = triage_ticket_run(ticket_id=new_ticket.pk)
    assert proposal is not None
    Ticket.objects.filter(pk=new_ticket.pk).update(status="queued")  # the sweeper's requeue
    runs = AgentRun.objects.count()

    def no_model_call(request):  # type: ignore[no-untyped-def]
        raise AssertionError("the model was called again")

    assert (
        triage_ticket_run(ticket_id=new_ticket.pk, backend=ScriptedBackend(no_model_call)) is None
    )

    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.AWAITING_REVIEW
    assert AgentRun.objects.count() == runs  # no second run, no model call
    assert TriageProposal.objects.filter(ticket=new_ticket).count() == 1
    long_ago = timezone.now() + timedelta(seconds=settings.TRIAGE_STALE_AFTER_SECONDS + 5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: long_ago)
        assert tickets_requeue_stale() == []  # settled: nothing for the sweeper


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_sweeper_skips_a_ticket_whose_run_holds_its_row(settings) -> None:  # type: ignore[no-untyped-def]
    """While a run stores its proposal it holds the ticket's row; the sweeper, locking what it
    requeues, skips that ticket instead of requeuing it behind the run's back."""
    from django.db import transaction

    assert connection.vendor == "postgresql"
    long_ago = timezone.now() - timedelta(seconds=settings.TRIAGE_STALE_AFTER_SECONDS + 5)
    busy = Ticket.objects.create(subject="Busy", requester_email="a@example.com")
    idle = Ticket.objects.create(subject="Idle", requester_email="b@example.com")
    Ticket.objects.filter(pk__in=[busy.pk, idle.pk]).update(
        status="triaging", status_changed_at=long_ago
    )
    locked, release = threading.Event(), threading.Event()

    def run_storing_its_proposal() -> None:
        with transaction.atomic():
            Ticket.objects.select_for_update().get(pk=busy.pk)
            locked.set()
            release.wait(10)
            Ticket.objects.filter(pk=busy.pk).update(status="awaiting_review")
        connection.close()

    worker = threading.Thread(target=run_storing_its_proposal)
    worker.start()
    assert locked.wait(10)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("agent.services._delay", lambda ticket_id: None)  # no broker here
            requeued = tickets_requeue_stale()
    finally:
        release.set()
        worker.join()

    assert requeued == [idle.pk]
    assert Ticket.objects.get(pk=busy.pk).status == "awaiting_review"


def test_a_rerun_after_approval_leaves_the_ticket_triaged(new_ticket: Ticket, reviewer) -> None:  # type: ignore[no-untyped-def]
    from agent.review import proposal_approve

    proposal = triage_ticket_run(ticket_id=new_ticket.pk)
    assert proposal is not None
    proposal_approve(proposal=proposal, reviewer=reviewer)
    Ticket.objects.filter(pk=new_ticket.pk).update(status="queued")  # a late redelivery

    assert triage_ticket_run(ticket_id=new_ticket.pk) is None

    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.TRIAGED
    assert AgentRun.objects.filter(ticket=new_ticket).count() == 1


# --- the database going away mid-run (issue 10: PostgreSQL restarted) -------------------------


def _database_gone(*args: object, **kwargs: object) -> None:
    from django.db import OperationalError

    raise OperationalError("server closed the connection unexpectedly")


def _run_losing_the_database(ticket: Ticket, monkeypatch: pytest.MonkeyPatch) -> None:
    """Task ``task-1`` claims the ticket, then the database goes away: the run fails, and so
    does the hand-back to ``queued``."""
    with monkeypatch.context() as patch:
        patch.setattr("agent.services.ticket_transition", _database_gone)
        with pytest.raises(OperationalError):
            triage_ticket_run(
                ticket_id=ticket.pk, task_id="task-1", backend=ScriptedBackend(_database_gone)
            )


def test_a_retry_takes_back_the_claim_the_database_failure_left(
    new_ticket: Ticket,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """The database went away mid-run, so the hand-back to ``queued`` failed as well: the
    ticket stays in ``triaging``. The task's retry (same task id) takes it back and triages it,
    instead of finding it "not waiting" and leaving it to the sweeper."""
    _run_losing_the_database(new_ticket, monkeypatch)
    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.TRIAGING  # what the outage left behind

    proposal = triage_ticket_run(
        ticket_id=new_ticket.pk,
        attempt=2,
        task_id="task-1",
        backend=ScriptedBackend(submit(new_ticket.pk)),
    )

    assert proposal is not None
    assert proposal.run.attempt == 2
    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.AWAITING_REVIEW
    runs = AgentRun.objects.filter(ticket=new_ticket).order_by("pk")
    assert [(run.attempt, run.status) for run in runs] == [(1, "abandoned"), (2, "finished")]
    assert TriageProposal.objects.filter(ticket=new_ticket).count() == 1


def test_another_task_does_not_take_over_a_live_claim(
    new_ticket: Ticket,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """Only the task that made the claim takes it back: another delivery leaves it alone and
    writes nothing (the sweeper recovers the ticket if its task never comes back)."""
    _run_losing_the_database(new_ticket, monkeypatch)

    assert triage_ticket_run(ticket_id=new_ticket.pk, task_id="task-2") is None
    assert triage_ticket_run(ticket_id=new_ticket.pk) is None  # no task id: nothing to match

    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.TRIAGING
    assert list(AgentRun.objects.filter(ticket=new_ticket).values_list("status", flat=True)) == [
        "running"
    ]
    assert not TriageProposal.objects.exists()


def test_a_claim_is_not_kept_without_its_run(
    new_ticket: Ticket,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """The database goes away between the claim and the run (the hand-back fails too): both
    are rolled back, so the ticket is still waiting and any retry claims it, instead of a
    claim that no run, and so no task, owns."""
    waiting = new_ticket.status
    with monkeypatch.context() as patch:
        patch.setattr(AgentRun.objects, "create", _database_gone)
        patch.setattr("agent.services.ticket_transition", _database_gone)
        with pytest.raises(OperationalError):
            triage_ticket_run(ticket_id=new_ticket.pk, task_id="task-1")

    new_ticket.refresh_from_db()
    assert new_ticket.status == waiting
    assert not AgentRun.objects.exists()
    assert triage_ticket_run(ticket_id=new_ticket.pk, attempt=2, task_id="task-1") is not None


def test_the_task_retries_through_a_database_outage(
    new_ticket: Ticket,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """Through the real task: the first execution loses the database (the run and the
    hand-back fail), ``autoretry_for`` retries it (eagerly here), and the retry triages."""
    calls = {"hand-back": 0}
    real_transition = ticket_transition

    def first_hand_back_fails(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["to"] == Ticket.Status.QUEUED and not calls["hand-back"]:
            calls["hand-back"] += 1
            _database_gone()
        return real_transition(**kwargs)

    backend = ScriptedBackend(_database_gone, submit(new_ticket.pk))
    monkeypatch.setattr("agent.services.ticket_transition", first_hand_back_fails)
    monkeypatch.setattr("agent.services.backend_for", lambda workflow: backend)

    # The first execution ends in Retry; the retry itself runs eagerly, inside it.
    triage_ticket.apply(args=[new_ticket.pk], task_id="task-1", throw=False)

    new_ticket.refresh_from_db()
    assert new_ticket.status == Ticket.Status.AWAITING_REVIEW
    assert calls["hand-back"] == 1
    assert TriageProposal.objects.get(ticket=new_ticket).run.attempt == 2
