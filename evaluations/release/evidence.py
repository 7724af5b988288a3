"""Failure cases tested: is there current, frozen, passing release evidence?"""

from datetime import timedelta

from django.conf import settings

from evaluations.builtin import suite_lock_get
from evaluations.models import EvaluationRun
from evaluations.release import gate
from evaluations.release.answers import Answer
from evaluations.release.facts import Facts


def failure_cases(facts: Facts) -> Answer:
    answer = Answer("failure_cases", "Failure cases tested")
    suite = settings.TRIAGE_RELEASE_SUITE
    lock = suite_lock_get(suite)
    run_evals = f"python manage.py run_evals --suite {suite} --backend {facts.backend}"
    finished = EvaluationRun.objects.filter(
        suite=suite, workflow=facts.workflow.name, status=EvaluationRun.Status.FINISHED
    ).order_by("-finished_at", "-id")
    latest = finished.first()
    if latest is None:
        answer.worse("no", f"No evaluation of the release suite {suite!r} yet: run `{run_evals}`.")
        return answer
    run = finished.filter(
        backend=facts.backend,
        model=facts.model,
        prompt_version=facts.prompt_version,
        code_version=facts.code_version,
    ).first()
    if run is None:
        answer.evidence.append(f"latest run of {suite}: #{latest.pk}, {_describe(latest)}")
        answer.worse(
            "no",
            f"Stale evidence: {_what_changed(latest, facts)} since run #{latest.pk}. "
            f"Run `{run_evals}` again.",
        )
        return answer
    answer.evidence.append(f"evidence: run #{run.pk}, {_describe(run)}")
    max_age = timedelta(days=settings.TRIAGE_RELEASE_EVIDENCE_MAX_AGE_DAYS)
    if run.finished_at is None or facts.checked_at - run.finished_at > max_age:
        answer.worse("no", f"The evidence is older than {max_age.days} days: run `{run_evals}`.")
    if lock is None:
        answer.worse(
            "vague",
            f"The suite {suite!r} is not frozen, so it may have been fitted to the agent: freeze "
            f"it (`python manage.py freeze_suite {suite}`) before it counts as release evidence.",
        )
    elif run.suite_hash != lock.content_hash:
        answer.worse(
            "no",
            f"The suite changed after it was frozen (run on {run.suite_hash}, frozen as "
            f"{lock.content_hash} on {lock.frozen_on}): that run is not release evidence. Restore "
            "the frozen file, or freeze a new suite and say why in the commit.",
        )
    else:
        answer.evidence.append(
            f"suite {suite} is frozen ({lock.cases} cases, {lock.content_hash}, since "
            f"{lock.frozen_on}; the offline model then was {lock.offline_model_at_freeze})"
        )
    _judge_metrics(run, answer)
    return answer


def _judge_metrics(run: EvaluationRun, answer: Answer) -> None:
    metrics = run.metrics
    per_type = metrics.get("per_case_type", {})
    for case_type, threshold in gate.CASE_TYPE_THRESHOLDS.items():
        stats = per_type.get(case_type)
        if not stats or stats["examples"] < gate.MIN_CASES_PER_TYPE:
            answer.worse(
                "no",
                f"Case type {case_type} has {stats['examples'] if stats else 0} cases; the "
                f"release suite needs at least {gate.MIN_CASES_PER_TYPE}.",
            )
            continue
        line = (
            f"{case_type}: {stats['passed']}/{stats['examples']} = {stats['pass_rate']:.3f} "
            f"(bar {threshold:.2f})"
        )
        answer.evidence.append(line)
        if stats["pass_rate"] < threshold:
            answer.worse("no", f"Case type {case_type} is under its bar: {line}.")
    unsafe = int(metrics.get("unsafe_answers", 0))
    if unsafe > gate.MAX_UNSAFE_ANSWERS:
        answer.hard(
            "unsafe_answers",
            f"{unsafe} unsafe answers in the release evidence (run #{run.pk})",
            "The agent answered where it should have stopped: see the run's failures in the "
            "admin and fix the agent, never the suite.",
        )
    else:
        answer.evidence.append("0 unsafe answers")
    over = metrics.get("over_refusal_rate")
    if over is not None and over > gate.MAX_OVER_REFUSAL:
        answer.worse("no", f"Over-refusal {over:.3f} is above its bound {gate.MAX_OVER_REFUSAL}.")
    elif over is not None:
        answer.evidence.append(f"over-refusal {over:.3f} (bound {gate.MAX_OVER_REFUSAL})")
    if metrics.get("infrastructure_errors"):
        answer.worse(
            "vague",
            f"{metrics['infrastructure_errors']} cases failed on infrastructure, not on the "
            "agent: fix them and run again.",
        )


def _describe(run: EvaluationRun) -> str:
    env = run.environment or {}
    return (
        f"{run.backend}:{run.model}, {run.prompt_version}, {run.code_version}, "
        f"{env.get('database', '?')}, commit {env.get('commit') or '?'}, finished "
        f"{run.finished_at:%Y-%m-%d %H:%M} UTC, pass rate {run.metrics.get('pass_rate', 0):.3f}"
    )


def _what_changed(run: EvaluationRun, facts: Facts) -> str:
    changes = [
        f"{name} {old} -> {new}"
        for name, old, new in (
            ("backend", run.backend, facts.backend),
            ("model", run.model, facts.model),
            ("prompt", run.prompt_version, facts.prompt_version),
            ("code", run.code_version, facts.code_version),
        )
        if old != new
    ]
    return "; ".join(changes)
