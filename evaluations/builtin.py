"""Built-in suites shipped with the code (``evaluations/suites/<name>.json``), their content
hashes, and the locks that freeze a suite (``<name>.lock.json``)."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from agent.engine.workflow import content_digest
from evaluations.models import EvaluationExample

SUITES_DIR = Path(__file__).with_name("suites")  # the JSON files of the built-in suites
# Suites the offline rules may be tuned on: their scores are development figures. ``outcome-dev``
# (256 tickets in four languages, written by four writers from a brief, reading no code and no
# suite) was first measured before anything was tuned on it (README).
DEVELOPMENT_SUITES = frozenset({"core", "outcome-dev"})
CORRECTIONS_SUITE = "corrections"


def builtin_suite_names() -> list[str]:
    return sorted(path.stem for path in SUITES_DIR.glob("*.json") if ".lock" not in path.suffixes)


def suite_role(name: str) -> str:
    """What a suite's figures are evidence of, said wherever they are reported."""
    if suite_lock_get(name) is not None:
        return "release suite: frozen, held out (no rule was tuned on it)"
    if name in DEVELOPMENT_SUITES:
        return "development suite: the offline rules were tuned on it (not evidence of quality)"
    if name == CORRECTIONS_SUITE:
        return "corrections from staff review"
    return "imported or curated suite"


def builtin_suite_cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        (SUITES_DIR / f"{name}.json").read_text(encoding="utf-8")
    )
    return cases


@transaction.atomic
def suite_sync_builtin(*, name: str) -> int:
    """Loads a built-in suite into the database, updating cases by id and deactivating cases
    no longer in the file, so the database always matches the shipped suite. Returns the
    number of active cases."""
    seen = []
    for case in builtin_suite_cases(name):
        EvaluationExample.objects.update_or_create(
            suite=name,
            external_id=case["id"],
            defaults={
                "source": EvaluationExample.Source.CURATED,
                "case_type": case["case_type"],
                "language": case.get("language", ""),
                "ticket_snapshot": case["ticket"],
                "context_snapshot": case.get("context"),
                "acceptable_outcomes": case["acceptable_outcomes"],
                "expected_category": case.get("expected_category", ""),
                "expected_urgency": case.get("expected_urgency", ""),
                "expected_flags": case.get("expected_flags", {}),
                "fault": case.get("fault", {}),
                "notes": case.get("notes", ""),
                "is_active": True,
            },
        )
        seen.append(case["id"])
    EvaluationExample.objects.filter(suite=name).exclude(external_id__in=seen).update(
        is_active=False
    )
    return len(seen)


# --- content hashes --------------------------------------------------------------------------


def _canonical_case(case: dict[str, Any]) -> dict[str, Any]:
    """A case as it decides a result, in the suite file's shape; notes and language included,
    so that any edit of a frozen suite shows."""
    return {
        "id": case.get("id", ""),
        "case_type": case["case_type"],
        "language": case.get("language") or "",
        "ticket": case["ticket"],
        "context": case.get("context"),
        "acceptable_outcomes": sorted(case["acceptable_outcomes"]),
        "expected_category": case.get("expected_category") or "",
        "expected_urgency": case.get("expected_urgency") or "",
        "expected_flags": case.get("expected_flags") or {},
        "fault": case.get("fault") or {},
        "notes": case.get("notes") or "",
    }


def example_as_case(example: EvaluationExample) -> dict[str, Any]:
    return {
        "id": example.external_id or f"example-{example.pk}",
        "case_type": example.case_type,
        "language": example.language,
        "ticket": example.ticket_snapshot,
        "context": example.context_snapshot,
        "acceptable_outcomes": example.acceptable_outcomes,
        "expected_category": example.expected_category,
        "expected_urgency": example.expected_urgency,
        "expected_flags": example.expected_flags,
        "fault": example.fault,
        "notes": example.notes,
    }


def suite_hash(cases: Iterable[dict[str, Any]]) -> str:
    """The content hash of a suite: the same for the file and for the examples synced from it,
    whatever their order."""
    canonical = sorted(
        json.dumps(_canonical_case(case), sort_keys=True, ensure_ascii=False) for case in cases
    )
    return "suite@" + content_digest(*canonical)


# --- frozen suites ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteLock:
    """A frozen suite: the hash its file had when it was frozen. Runs of the suite count as
    release evidence only while the file (and so every run's recorded hash) still matches."""

    suite: str
    content_hash: str
    cases: int
    frozen_on: str
    offline_model_at_freeze: str
    note: str


def suite_lock_path(name: str) -> Path:
    return SUITES_DIR / f"{name}.lock.json"


def suite_lock_get(name: str) -> SuiteLock | None:
    path = suite_lock_path(name)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return SuiteLock(**data)
