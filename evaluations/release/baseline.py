"""Recorded baselines: what the release evidence looked like when it was last accepted, per
database, so that CI can fail on a regression while the verdict is not yet GO.

A baseline file holds, for each database vendor (retrieval, and so the offline backend's
answers, differ between PostgreSQL and SQLite), the per-case-type pass rates of the release
suite, its unsafe answers, and the release check's answers. A regression is a new unsafe answer,
a case type below its recorded pass rate, or a release-check answer or verdict worse than
recorded. Improvements are recorded again (``--record-baseline``): the baseline only ratchets up.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluations.models import EvaluationRun
from evaluations.release.check import ANSWERS, VERDICTS, ReleaseReport


class BaselineError(Exception):
    """The baseline file is missing, unreadable, or is not for this suite or database."""


def baseline_section(path: Path, vendor: str, part: str) -> dict[str, Any]:
    """The ``part`` ("evaluation" or "release_check") recorded for ``vendor``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BaselineError(f"cannot read the baseline {path}: {error}") from error
    section = document.get("databases", {}).get(vendor, {}).get(part)
    if section is None:
        raise BaselineError(f"{path} records no {part} for a {vendor} database")
    return dict(section)


def evaluation_regressions(run: EvaluationRun, recorded: dict[str, Any]) -> list[str]:
    """How ``run`` is worse than the recorded evaluation: a changed suite is an error, not a
    regression (the baseline must be recorded again, with a reason)."""
    if run.suite != recorded["suite"] or run.suite_hash != recorded["suite_hash"]:
        raise BaselineError(
            f"the baseline is for suite {recorded['suite']} {recorded['suite_hash']}, this run "
            f"is {run.suite} {run.suite_hash}"
        )
    problems = []
    per_type = run.metrics.get("per_case_type", {})
    for case_type, rate in sorted(recorded["pass_rates"].items()):
        now = per_type.get(case_type, {}).get("pass_rate", 0.0)
        if now < rate - 1e-9:
            problems.append(f"{case_type} pass rate {now:.3f}, recorded {rate:.3f}")
    new_unsafe = sorted(set(unsafe_cases(run)) - set(recorded["unsafe"]))
    if new_unsafe:
        problems.append(f"new unsafe answers: {', '.join(new_unsafe)}")
    return problems


def release_check_regressions(report: ReleaseReport, recorded: dict[str, Any]) -> list[str]:
    problems = []
    if VERDICTS.index(report.verdict) > VERDICTS.index(recorded["verdict"]):
        problems.append(f"verdict {report.verdict}, recorded {recorded['verdict']}")
    for answer in report.answers:
        was = recorded["answers"].get(answer.key, "no")
        if ANSWERS.index(answer.answer) > ANSWERS.index(was):
            problems.append(f"{answer.question}: {answer.answer}, recorded {was}")
    new_hard = sorted({c for a in report.answers for c in a.hard_checks} - set(recorded["hard"]))
    problems += [f"new hard failure: {failure}" for failure in new_hard]
    return problems


def unsafe_cases(run: EvaluationRun) -> list[str]:
    """The cases of ``run`` answered with a proposal where that was not acceptable."""
    return sorted(
        result.example.external_id or f"example-{result.example_id}"
        for result in run.results.select_related("example")
        if result.outcome == "proposal" and "proposal" not in result.example.acceptable_outcomes
    )


def baseline_record(path: Path, vendor: str, part: str, section: dict[str, Any]) -> None:
    """Writes ``part`` for ``vendor`` into the baseline file, keeping the other sections."""
    document: dict[str, Any] = {}
    if path.exists():
        document = json.loads(path.read_text(encoding="utf-8"))
    document.setdefault(
        "about",
        "Recorded release evidence (evaluations/release/baseline.py). CI fails on a regression "
        "against it; record it again only after an improvement, never to hide a regression.",
    )
    section = {**section, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    document.setdefault("databases", {}).setdefault(vendor, {})[part] = section
    path.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def evaluation_section(run: EvaluationRun) -> dict[str, Any]:
    per_type = run.metrics.get("per_case_type", {})
    return {
        "run_id": run.pk,
        "suite": run.suite,
        "suite_hash": run.suite_hash,
        "backend": run.backend,
        "model": run.model,
        "code_version": run.code_version,
        "environment": run.environment,
        "pass_rate": run.metrics.get("pass_rate"),
        "pass_rates": {case_type: stats["pass_rate"] for case_type, stats in per_type.items()},
        "unsafe": unsafe_cases(run),
    }


def release_check_section(report: ReleaseReport) -> dict[str, Any]:
    return {
        "verdict": report.verdict,
        "answers": {answer.key: answer.answer for answer in report.answers},
        "hard": sorted({c for answer in report.answers for c in answer.hard_checks}),
        "system": report.as_dict()["system"],
    }
