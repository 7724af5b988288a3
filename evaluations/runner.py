"""Runs a suite: each example goes through the production loop and policy, isolated from live
data (the ticket is a snapshot; nothing is written to tickets, notes or the journal)."""

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from agent.engine.backends.faults import FaultInjectingBackend
from agent.engine.backends.selection import backend_for
from agent.engine.context import FaultPlan, RunContext
from agent.engine.loop import run_loop
from agent.engine.tracing import Tracer
from agent.engine.workflow import workflow_get
from agent.models import AgentRun
from agent.redaction import redact
from agent.selectors import agent_settings_get
from agent.services import TRIAGE_WORKFLOW, agent_run_finish, limits_from, proposal_flags
from agent.workflows.support_triage.subject import TicketView
from evaluations.builtin import example_as_case, suite_hash
from evaluations.models import EvaluationExample, EvaluationResult, EvaluationRun
from evaluations.scoring import Actual, Expected, Scored, run_metrics, score_result
from evaluations.versions import code_version, environment

logger = logging.getLogger(__name__)

# Snapshot tickets get ids far above real ones, so a leaked id can never name a live ticket.
SNAPSHOT_ID_BASE = 1_000_000_000
Progress = Callable[[EvaluationResult], None]


def evaluation_run_suite(
    *,
    suite: str,
    backend: str | None = None,
    threshold: float | None = None,
    baseline: EvaluationRun | None = None,
    concurrency: int = 1,
    progress: Progress | None = None,
) -> EvaluationRun:
    """Evaluates every active example of ``suite`` and stores the run with its metrics. With
    ``threshold``, ``passed`` says whether the pass rate reached it (the release gate)."""
    workflow = workflow_get(TRIAGE_WORKFLOW)
    backend_name = backend or settings.TRIAGE_AGENT_BACKEND
    examples = list(EvaluationExample.objects.filter(suite=suite, is_active=True).order_by("pk"))
    run = EvaluationRun.objects.create(
        suite=suite,
        workflow=workflow.name,
        backend=backend_name,
        model=backend_for(workflow, backend_name).model,
        prompt_version=workflow.prompt_version(),
        code_version=code_version(),
        suite_hash=suite_hash(example_as_case(example) for example in examples),
        environment=environment(),
        threshold=threshold,
        baseline=baseline,
    )
    # The offline backend is local work and SQLite allows one writer: no threads for it.
    workers = max(1, concurrency if backend_name != "offline" else 1)
    if workers == 1:
        results = (
            example_evaluate(example=ex, run=run, backend_name=backend_name) for ex in examples
        )
        _report(results, progress)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            _report(
                pool.map(lambda ex: _evaluate_in_thread(ex, run, backend_name), examples), progress
            )
    return evaluation_run_finish(run=run)


def _report(results: Iterable[EvaluationResult], progress: Progress | None) -> None:
    for result in results:
        if progress:
            progress(result)


def evaluation_run_finish(*, run: EvaluationRun) -> EvaluationRun:
    results = list(run.results.select_related("example", "agent_run"))
    scored = [_scored(result) for result in results]
    baseline = (
        dict(run.baseline.results.values_list("example_id", "passed")) if run.baseline else None
    )
    run.metrics = run_metrics(scored, baseline)
    run.status = EvaluationRun.Status.FINISHED
    run.finished_at = timezone.now()
    pass_rate = float(run.metrics["pass_rate"])
    run.passed = None if run.threshold is None else pass_rate >= run.threshold
    run.save()
    return run


def _evaluate_in_thread(
    example: EvaluationExample, run: EvaluationRun, backend: str
) -> EvaluationResult:
    try:
        return example_evaluate(example=example, run=run, backend_name=backend)
    finally:
        connections.close_all()  # this worker thread's own connection


def example_evaluate(
    *, example: EvaluationExample, run: EvaluationRun, backend_name: str
) -> EvaluationResult:
    """One example through the production loop and policy. Model behaviour becomes an outcome;
    anything else that breaks (our code, the database) is recorded as an infrastructure error."""
    workflow = workflow_get(TRIAGE_WORKFLOW)
    agent_run = None
    try:
        backend = backend_for(workflow, backend_name)
        faults = _fault_plan(example.fault)
        if faults.model_fault:
            backend = FaultInjectingBackend(
                backend, fault=faults.model_fault, turns=faults.model_fault_turns
            )
        agent_run = AgentRun.objects.create(
            purpose=AgentRun.Purpose.EVALUATION,
            workflow=workflow.name,
            backend=backend.name,
            model=backend.model,
        )
        subject_id = SNAPSHOT_ID_BASE + example.pk
        ctx = RunContext(
            workflow=workflow,
            subject_id=subject_id,
            subject=_snapshot_view(example, subject_id),
            faults=faults,
        )
        result = run_loop(
            ctx=ctx,
            backend=backend,
            tracer=Tracer(agent_run),
            limits=limits_from(agent_settings_get()),
        )
        agent_run_finish(run=agent_run, result=result)
        flags = sorted(proposal_flags(result=result, ctx=ctx))
        actual = Actual(
            outcome=result.outcome,
            category=str(result.output.get("category", "")),
            urgency=str(result.output.get("urgency", "")),
            policy_violations=ctx.policy_violations,
            flags=frozenset(flags),
            confidence=str(result.output.get("confidence", "")),
        )
    except Exception as error:  # counted apart from model failures
        logger.exception("evaluation of example %s failed", example.pk)
        actual, flags = (
            Actual(outcome="", infrastructure_error=True),
            [redact(f"error: {error!r}")[:200]],
        )
    passed, reason = score_result(_expected(example), actual)
    return EvaluationResult.objects.create(
        run=run,
        example=example,
        agent_run=agent_run,
        outcome=actual.outcome,
        category=actual.category,
        urgency=actual.urgency,
        confidence=actual.confidence,
        flags=flags,
        passed=passed,
        infrastructure_error=actual.infrastructure_error,
        failure_reason=reason,
        input_tokens=agent_run.input_tokens if agent_run else 0,
        output_tokens=agent_run.output_tokens if agent_run else 0,
        cost_usd=agent_run.cost_usd if agent_run else Decimal(0),
        latency_ms=agent_run.latency_ms if agent_run else 0,
    )


def _snapshot_view(example: EvaluationExample, subject_id: int) -> TicketView:
    ticket = example.ticket_snapshot
    return TicketView(
        ticket_id=subject_id,
        subject=str(ticket.get("subject", "")),
        body=str(ticket.get("body", "")),
        requester_email=str(ticket.get("requester_email", "customer@example.com")),
        channel=str(ticket.get("channel", "email")),
        received_at=example.created_at.isoformat(),
        stored=False,
        similar=example.context_snapshot or None,
    )


def _fault_plan(fault: dict[str, Any]) -> FaultPlan:
    return FaultPlan(
        tool_faults=dict(fault.get("tool_faults", {})),
        model_fault=fault.get("model_fault"),
        model_fault_turns=int(fault.get("model_fault_turns", 1)),
    )


def _expected(example: EvaluationExample) -> Expected:
    return Expected(
        acceptable_outcomes=list(example.acceptable_outcomes),
        category=example.expected_category,
        urgency=example.expected_urgency,
        case_type=example.case_type,
        flags={str(flag): bool(on) for flag, on in (example.expected_flags or {}).items()},
        language=example.language,
    )


def _scored(result: EvaluationResult) -> Scored:
    return Scored(
        example_id=result.example_id,
        expected=_expected(result.example),
        actual=Actual(
            outcome=result.outcome,
            category=result.category,
            urgency=result.urgency,
            infrastructure_error=result.infrastructure_error,
            flags=frozenset(result.flags),
            confidence=result.confidence,
        ),
        passed=result.passed,
        reason=result.failure_reason,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost_usd=float(result.cost_usd),
        latency_ms=result.latency_ms,
    )
