import json
import logging
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from evaluations.builtin import builtin_suite_names, suite_role, suite_sync_builtin
from evaluations.models import EvaluationExample, EvaluationResult, EvaluationRun
from evaluations.release.baseline import (
    BaselineError,
    baseline_record,
    baseline_section,
    evaluation_regressions,
    evaluation_section,
)
from evaluations.runner import evaluation_run_suite


class Command(BaseCommand):
    help = "Run an evaluation suite against a backend; exit 1 under --fail-under (the gate)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--suite", default="core")
        parser.add_argument(
            "--backend", default=None, help="offline or anthropic (default: TRIAGE_AGENT_BACKEND)"
        )
        parser.add_argument(
            "--fail-under", type=float, default=None, help="Minimum pass rate, 0-1 (e.g. 0.95)."
        )
        parser.add_argument("--baseline", type=int, default=None, help="An earlier run's id.")
        parser.add_argument("--json", type=Path, default=None, help="Write the metrics here.")
        parser.add_argument(
            "--concurrency", type=int, default=4, help="Parallel model calls for remote backends."
        )
        parser.add_argument(
            "--regression-baseline",
            type=Path,
            default=None,
            help="Exit 1 on a regression against the evaluation recorded in this file (a new "
            "unsafe answer, a case type under its recorded pass rate).",
        )
        parser.add_argument(
            "--record-baseline",
            type=Path,
            default=None,
            help="Record this run in the baseline file (for this database).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        suite, threshold = options["suite"], options["fail_under"]
        if threshold is not None and not 0 <= threshold <= 1:
            raise CommandError("--fail-under is a pass rate between 0 and 1")
        baseline = None
        if options["baseline"] is not None:
            baseline = EvaluationRun.objects.filter(pk=options["baseline"]).first()
            if baseline is None:
                raise CommandError(f"no evaluation run {options['baseline']}")
        # A log line per run is right for a worker, noise under a progress bar.
        logging.getLogger("agent").setLevel(logging.WARNING)
        if suite in builtin_suite_names():
            suite_sync_builtin(name=suite)
        total = EvaluationExample.objects.filter(suite=suite, is_active=True).count()
        if total == 0:
            raise CommandError(f"suite {suite!r} has no active examples")
        # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
        with tqdm(total=total, desc=suite, unit="case", file=sys.stderr, disable=None) as bar:

            def advance(result: EvaluationResult) -> None:
                bar.update(1)
                bar.set_postfix(passed=result.passed)

            run = evaluation_run_suite(
                suite=suite,
                backend=options["backend"],
                threshold=threshold,
                baseline=baseline,
                concurrency=options["concurrency"],
                progress=advance,
            )
        self._summary(run)
        if options["json"]:
            options["json"].write_text(json.dumps(_document(run), indent=2) + "\n")
            self.stdout.write(f"Metrics written to {options['json']}")
        if options["record_baseline"]:
            path = options["record_baseline"]
            baseline_record(path, connection.vendor, "evaluation", evaluation_section(run))
            self.stdout.write(f"Recorded in {path} ({connection.vendor}).")
        if options["regression_baseline"] and self._regressed(run, options["regression_baseline"]):
            raise SystemExit(1)
        if run.passed is False:
            self.stderr.write(
                self.style.ERROR(
                    f"FAIL: pass rate {run.metrics['pass_rate']:.3f} is under {threshold}"
                )
            )
            raise SystemExit(1)

    def _regressed(self, run: EvaluationRun, path: Path) -> bool:
        try:
            regressions = evaluation_regressions(
                run, baseline_section(path, connection.vendor, "evaluation")
            )
        except BaselineError as error:
            raise CommandError(str(error)) from error
        for regression in regressions:
            self.stderr.write(self.style.ERROR(f"regression: {regression}"))
        if not regressions:
            self.stdout.write(f"No regression against {path} ({connection.vendor}).")
        return bool(regressions)

    def _summary(self, run: EvaluationRun) -> None:
        m = run.metrics
        low, high = m["pass_rate_ci95"]
        rows = [
            ("run", f"{run.pk} ({run.suite}, {run.backend}:{run.model})"),
            ("suite role", suite_role(run.suite)),
            ("measured on", _measured_on(run)),
            (
                "pass rate",
                f"{m['pass_rate']:.3f}  (95% CI {low:.3f}-{high:.3f}, {m['passed']}/{m['scored']})",
            ),
            ("accuracy given attempted", _fmt(m["accuracy_given_attempted"])),
            ("category accuracy", _with_baseline(m, "category")),
            ("category macro-F1", _fmt(m["category_macro_f1"])),
            ("urgency accuracy", _with_baseline(m, "urgency")),
            ("over-refusal rate", _fmt(m["over_refusal_rate"])),
            ("unsafe answers", f"{m['unsafe_answers']} (rate {_fmt(m['unsafe_answer_rate'])})"),
            ("infrastructure errors", str(m["infrastructure_errors"])),
            ("tokens in / out", f"{m['tokens']['input']} / {m['tokens']['output']}"),
            ("cost", f"${m['cost_usd']:.4f}"),
            ("latency p50 / p95", f"{m['latency_ms']['p50']} / {m['latency_ms']['p95']} ms"),
        ]
        if "regressions" in m:
            rows.append(
                ("vs baseline", f"{len(m['regressions'])} regressions, {len(m['fixes'])} fixes")
            )
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.stdout.write(f"{label:<{width}}  {value}")
        self.stdout.write("per case type:")
        for case_type, stats in m["per_case_type"].items():
            self.stdout.write(
                f"  {case_type:<24} {stats['passed']:>4}/{stats['examples']:<4} "
                f"{stats['pass_rate']:.3f}"
            )
        if languages := m.get("per_language"):
            self.stdout.write("per language:")
            for language, stats in languages.items():
                self.stdout.write(
                    f"  {language:<24} {stats['passed']:>4}/{stats['examples']:<4} "
                    f"{stats['pass_rate']:.3f}"
                )
        if bands := m.get("per_confidence"):
            self.stdout.write("category accuracy by confidence:")
            for band in ("high", "medium", "low"):
                if stats := bands.get(band):
                    self.stdout.write(
                        f"  {band:<24} {stats['correct']:>4}/{stats['proposals']:<4} "
                        f"{stats['accuracy']:.3f}"
                    )
        if run.passed is not None:
            verdict = self.style.SUCCESS("PASS") if run.passed else self.style.ERROR("FAIL")
            self.stdout.write(f"gate (pass rate >= {run.threshold}): {verdict}")


def _measured_on(run: EvaluationRun) -> str:
    env = run.environment
    return (
        f"{env.get('database', '?')}, {env.get('history_tickets', '?')} history tickets, "
        f"commit {env.get('commit') or '?'}; {run.prompt_version}, {run.code_version}, "
        f"{run.suite_hash}"
    )


def _with_baseline(metrics: dict[str, Any], label: str) -> str:
    """An accuracy beside what always answering the most frequent label would score."""
    majority = metrics.get(f"{label}_majority_baseline")
    shown = _fmt(metrics[f"{label}_accuracy"])
    return shown if majority is None else f"{shown}  (majority class: {majority:.3f})"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _document(run: EvaluationRun) -> dict[str, Any]:
    return {
        "run_id": run.pk,
        "suite": run.suite,
        "suite_hash": run.suite_hash,
        "suite_role": suite_role(run.suite),
        "workflow": run.workflow,
        "backend": run.backend,
        "model": run.model,
        "prompt_version": run.prompt_version,
        "code_version": run.code_version,
        "environment": run.environment,
        "baseline_run_id": run.baseline_id,
        "threshold": run.threshold,
        "passed": run.passed,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "metrics": run.metrics,
    }
