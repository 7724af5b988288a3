"""Running the agent: triage a ticket into a stored proposal, the kill switch, and recovery of
lost work. Review services (approve, reject, undo) live in ``agent.review``."""

import logging
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from agent.engine.backends.base import ModelBackend
from agent.engine.backends.pricing import cost_from_settings
from agent.engine.backends.selection import backend_for
from agent.engine.context import RunContext
from agent.engine.loop import Limits, LoopResult, run_loop, trace_intent, trace_safe_stop
from agent.engine.tools import Risk
from agent.engine.tracing import Tracer
from agent.engine.workflow import SAFE_STOP, workflow_get
from agent.engine.writes import write_path
from agent.models import ACTIVE_PROPOSAL_STATUSES, AgentRun, AgentSettings, Outcome, TriageProposal
from agent.redaction import redact, redact_data
from agent.selectors import agent_settings_get
from tickets.models import Category, Ticket
from tickets.services import ticket_claim_for_triage, ticket_transition

logger = logging.getLogger(__name__)

TRIAGE_WORKFLOW = "support-triage"
# Where a ticket goes once its run ended, by outcome.
STATUS_AFTER = {
    Outcome.PROPOSAL: Ticket.Status.AWAITING_REVIEW,
    Outcome.CLARIFICATION: Ticket.Status.AWAITING_REVIEW,
    Outcome.REFUSAL: Ticket.Status.NEEDS_MANUAL_TRIAGE,
    Outcome.SAFE_STOP: Ticket.Status.NEEDS_MANUAL_TRIAGE,
}


def limits_from(agent_settings: AgentSettings) -> Limits:
    return Limits(
        max_steps=agent_settings.max_steps,
        token_budget=agent_settings.token_budget,
        timeout_seconds=float(agent_settings.timeout_seconds),
        retry_base_delay=settings.TRIAGE_RETRY_BASE_DELAY,
    )


def triage_enqueue(*, ticket_id: int) -> None:
    """Queues a ticket for triage once the current transaction commits."""

    def enqueue() -> None:
        ticket_transition(
            ticket_id=ticket_id, to=Ticket.Status.QUEUED, allowed_from={Ticket.Status.NEW}
        )
        _delay(ticket_id)

    transaction.on_commit(enqueue)


def offline_model_retrain_soon() -> None:
    """Retrains the offline model once the current transaction commits (in the worker, or in
    process when tasks run eagerly)."""
    from agent.tasks import retrain_offline_model

    transaction.on_commit(lambda: retrain_offline_model.delay())


def triage_ticket_run(
    *, ticket_id: int, attempt: int = 1, task_id: str = "", backend: ModelBackend | None = None
) -> TriageProposal | None:
    """Triages one ticket: claims it, runs the workflow, stores the proposal. Idempotent: a
    ticket that is not waiting for triage (claimed by another worker, or already triaged) is
    left alone and None is returned; a retry of the task whose claim is still on the ticket
    takes it back (see ``agent_run_start``)."""
    run = agent_run_start(ticket_id=ticket_id, attempt=attempt, task_id=task_id)
    if run is None:
        return None
    try:
        return _triage_claimed(run, backend)
    except Exception:
        # Hand the ticket back so that the task's retry (or the sweeper) can claim it again.
        # When the database itself failed this fails too, and the claim stays: the retry
        # takes it back by its task id.
        ticket_transition(
            ticket_id=ticket_id, to=Ticket.Status.QUEUED, allowed_from={Ticket.Status.TRIAGING}
        )
        raise


@transaction.atomic
def agent_run_start(*, ticket_id: int, attempt: int, task_id: str) -> AgentRun | None:
    """Claims a ticket for triage and opens its run, in one transaction, so that a committed
    claim always has its run. None, with nothing written, when the ticket is not this task's
    to triage; a ticket that already has its proposal is settled instead.

    A ticket in ``triaging`` whose running run has this task's id is this task's own: a retry
    after the database went away mid-run (the hand-back could not be written either), or a
    redelivery after its worker died. It is taken back at once, not left to the sweeper."""
    stale_before = timezone.now() - timedelta(seconds=settings.TRIAGE_STALE_AFTER_SECONDS)
    claimed = ticket_claim_for_triage(ticket_id=ticket_id, stale_before=stale_before)
    if not claimed and not _reclaim_own(ticket_id=ticket_id, task_id=task_id):
        logger.info("ticket %s is not waiting for triage; nothing to do", ticket_id)
        return None
    if (active := _active_proposal(ticket_id)) is not None:
        # Requeued after its proposal was stored (a sweeper or broker redelivery race): no
        # second run, no model call; the ticket goes back where its proposal put it.
        _settle(ticket_id, active)
        logger.warning(
            "ticket %s already has proposal %s; settled, not rerun", ticket_id, active.pk
        )
        return None
    AgentRun.objects.filter(ticket_id=ticket_id, status=AgentRun.Status.RUNNING).update(
        status=AgentRun.Status.ABANDONED, outcome=SAFE_STOP, finished_at=timezone.now()
    )
    return AgentRun.objects.create(
        ticket_id=ticket_id,
        workflow=TRIAGE_WORKFLOW,
        attempt=attempt,
        task_id=task_id,
        backend="none",
    )


def _reclaim_own(*, ticket_id: int, task_id: str) -> bool:
    """Takes back a ticket left in ``triaging`` by an earlier execution of this same task."""
    if not task_id:
        return False
    own_run = AgentRun.objects.filter(
        ticket_id=ticket_id, task_id=task_id, status=AgentRun.Status.RUNNING
    )
    now = timezone.now()
    moved = Ticket.objects.filter(
        pk=ticket_id, status=Ticket.Status.TRIAGING, pk__in=own_run.values("ticket_id")
    ).update(status_changed_at=now, updated_at=now)
    if moved:
        logger.warning("ticket %s: task %s takes back its own claim", ticket_id, task_id)
    return moved == 1


def _triage_claimed(run: AgentRun, backend: ModelBackend | None) -> TriageProposal | None:
    workflow = workflow_get(TRIAGE_WORKFLOW)
    agent_settings = agent_settings_get()
    ticket_id = run.ticket_id
    if ticket_id is None:
        raise ValueError("a triage run needs a ticket")
    tracer = Tracer(run)
    if not agent_settings.agent_enabled:
        result = LoopResult(
            outcome=SAFE_STOP,
            error="the agent is switched off (kill switch)",
            prompt_version=workflow.prompt_version(),
        )
        limits = limits_from(agent_settings)
        trace_intent(
            tracer,
            workflow=workflow,
            subject_id=ticket_id,
            prompt_version=result.prompt_version,
            backend="none",
            limits=limits,
        )
        tracer.record(
            "error", "Kill switch is off: the ticket goes to manual triage, no model call"
        )
        trace_safe_stop(tracer, result.error)
        return proposal_store(run=run, result=result, ctx=None)
    backend = backend or backend_for(workflow)
    run.backend, run.model = backend.name, backend.model
    run.save(update_fields=["backend", "model"])
    ctx = RunContext(
        workflow=workflow, subject_id=ticket_id, subject=workflow.load_subject(ticket_id)
    )
    result = run_loop(ctx=ctx, backend=backend, tracer=tracer, limits=limits_from(agent_settings))
    return proposal_store(run=run, result=result, ctx=ctx)


def agent_run_finish(*, run: AgentRun, result: LoopResult) -> AgentRun:
    """Records how a run ended: outcome, risk, tokens, cost, latency."""
    usage = result.usage
    run.status = AgentRun.Status.FINISHED
    run.outcome = result.outcome
    run.prompt_version = result.prompt_version
    run.error = redact(result.error)  # error texts quote what failed: masked like the rest
    run.risk_level = result.max_risk.value
    run.model_calls = result.model_calls
    run.input_tokens, run.output_tokens = usage.input_tokens, usage.output_tokens
    run.cache_read_tokens, run.cache_write_tokens = (
        usage.cache_read_tokens,
        usage.cache_write_tokens,
    )
    run.cost_usd = cost_from_settings(usage).quantize(Decimal("0.000001"))
    run.latency_ms = result.latency_ms
    run.context_chars, run.context_left_out = result.context_chars, result.context_left_out
    run.finished_at = timezone.now()
    run.save()
    logger.info(
        "run %s (%s, ticket %s) ended in %s after %d model calls, %d tokens, %d ms%s",
        run.pk,
        run.workflow,
        run.ticket_id or "-",
        run.outcome,
        run.model_calls,
        usage.total,
        run.latency_ms,
        f": {run.error}" if run.error else "",
    )
    return run


@write_path(
    caused_by="agent",
    writes="stores a pending TriageProposal beside the ticket and moves the ticket to a queue "
    "(awaiting review or manual triage); nothing on the ticket itself changes",
    risk=Risk.PROPOSE,
    audit="the run and its ordered trace (AgentRun, TraceStep)",
    undo="proposal_reject",
    undo_how="Reject the proposal: it is never applied and the ticket goes to a human.",
)
@transaction.atomic
def proposal_store(
    *, run: AgentRun, result: LoopResult, ctx: RunContext | None
) -> TriageProposal | None:
    """Stores the run's outcome as the ticket's pending proposal and moves the ticket on. If the
    ticket already has an active proposal (the database guarantees at most one), this run's
    result is kept on the run only."""
    agent_run_finish(run=run, result=result)
    if run.ticket_id is None:
        raise ValueError("a proposal needs a run of a ticket")
    # The one place model-derived text becomes a proposal: masked here, whatever the model
    # wrote (a model that echoes a key or its prompt must not publish it in a note). Then what
    # the model saw masked but staff may read is filled in from the ticket, by the workflow.
    output = redact_data(result.output)
    if ctx is not None:
        output = ctx.workflow.output_for_staff(output, ctx.subject)
    flags = proposal_flags(result=result, ctx=ctx)
    proposal = TriageProposal(
        ticket_id=run.ticket_id,
        run=run,
        outcome=result.outcome,
        category=_category(output.get("category")),
        urgency=output.get("urgency", ""),
        confidence=output.get("confidence", ""),
        reason=output.get("reason", ""),
        draft_note=output.get("draft_note", ""),
        clarification_question=output.get("question", ""),
        missing_information=output.get("missing", []),
        error=redact(result.error),
        injection_suspected="injection_suspected" in flags,
        requires_human_action="requires_human_action" in flags,
        degraded_context="degraded_context" in flags,
        degraded_reasons=redact_data(ctx.degraded) if ctx else [],
        similar_tickets=redact_data(ctx.state.get("similar_tickets", [])) if ctx else [],
    )
    try:
        with transaction.atomic():
            proposal.save()
    except IntegrityError:
        logger.warning(
            "ticket %s already has an active proposal; run %s not stored as one",
            run.ticket_id,
            run.pk,
        )
        if (active := _active_proposal(run.ticket_id)) is not None:
            _settle(run.ticket_id, active)
        return None
    ticket_transition(
        ticket_id=proposal.ticket_id,
        to=STATUS_AFTER[Outcome(result.outcome)],
        allowed_from={Ticket.Status.TRIAGING},
    )
    return proposal


def proposal_flags(*, result: LoopResult, ctx: RunContext | None) -> set[str]:
    """The flags a run's proposal carries: those raised in code during the run, those the model
    set, and ``requires_human_action`` on every refusal (a human takes the ticket over)."""
    flags = set(ctx.flags) if ctx else set()
    flags |= {
        flag for flag in ("injection_suspected", "requires_human_action") if result.output.get(flag)
    }
    if result.outcome == Outcome.REFUSAL:
        flags.add("requires_human_action")
    return flags


def _category(slug: str | None) -> Category | None:
    return Category.objects.filter(slug=slug).first() if slug else None


def _active_proposal(ticket_id: int) -> TriageProposal | None:
    return TriageProposal.objects.filter(
        ticket_id=ticket_id, status__in=ACTIVE_PROPOSAL_STATUSES
    ).first()


def _settle(ticket_id: int, proposal: TriageProposal) -> None:
    """Moves a ticket claimed for triage to where its active proposal puts it: the review
    queue or manual triage while it is pending, triaged once approved with labels."""
    if proposal.status == TriageProposal.Status.PENDING:
        to = STATUS_AFTER[Outcome(proposal.outcome)]
    elif Ticket.objects.filter(pk=ticket_id, category__isnull=False).exclude(urgency="").exists():
        to = Ticket.Status.TRIAGED
    else:
        to = Ticket.Status.NEEDS_MANUAL_TRIAGE
    ticket_transition(ticket_id=ticket_id, to=to, allowed_from={Ticket.Status.TRIAGING})


def tickets_requeue_stale() -> list[int]:
    """Re-enqueues tickets whose triage was lost (broker restart, dead worker): those waiting in
    ``new``, ``queued`` or ``triaging`` for longer than TRIAGE_STALE_AFTER_SECONDS. Each is
    requeued at most once per that period. Returns their ids."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.TRIAGE_STALE_AFTER_SECONDS)
    waiting = [Ticket.Status.NEW, Ticket.Status.QUEUED, Ticket.Status.TRIAGING]
    with transaction.atomic():
        # Locked and re-checked in one statement: a ticket whose run is storing its proposal
        # right now (its row locked) is skipped, and one that moved on is not selected.
        stale = Ticket.objects.select_for_update(skip_locked=True).filter(
            status__in=waiting, status_changed_at__lt=cutoff
        )
        ticket_ids = list(stale.order_by("pk").values_list("pk", flat=True)[:1000])
        AgentRun.objects.filter(ticket_id__in=ticket_ids, status=AgentRun.Status.RUNNING).update(
            status=AgentRun.Status.ABANDONED,
            outcome=SAFE_STOP,
            finished_at=now,
            error="worker lost; requeued by the sweeper",
        )
        Ticket.objects.filter(pk__in=ticket_ids, status__in=waiting).update(
            status=Ticket.Status.QUEUED, status_changed_at=now, updated_at=now
        )
        for ticket_id in ticket_ids:
            transaction.on_commit(partial(_delay, ticket_id))
    if ticket_ids:
        logger.warning("requeued %d stale tickets: %s", len(ticket_ids), ticket_ids[:20])
    return ticket_ids


ENQUEUE_FAILURES_KEY = "triage:enqueue-failures"


def _delay(ticket_id: int) -> None:
    """Sends a ticket's triage to the queue: every enqueue goes through here. The ticket is
    already committed, so a broker error (or, with tasks in process, a failed run) must not
    fail the request that stored it: it is logged and counted (``/healthz`` shows the count),
    and the sweeper requeues the ticket after ``TRIAGE_STALE_AFTER_SECONDS``."""
    from agent.tasks import triage_ticket

    try:
        triage_ticket.delay(ticket_id)
    except Exception:
        logger.exception("could not enqueue ticket %s; the sweeper will requeue it", ticket_id)
        try:
            if cache.add(ENQUEUE_FAILURES_KEY, 1, timeout=None) is False:
                cache.incr(ENQUEUE_FAILURES_KEY)
        except Exception:  # the cache may be the broker that just failed
            logger.warning("could not count the failed enqueue of ticket %s", ticket_id)


def enqueue_failures() -> int | None:
    """Failed enqueues since the cache was last cleared (None: the cache is unreachable)."""
    try:
        return int(cache.get(ENQUEUE_FAILURES_KEY) or 0)
    except Exception:
        return None
