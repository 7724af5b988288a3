"""Built-in suites shipped with the code (``evaluations/suites/<name>.json``)."""

import json
from pathlib import Path

from django.db import transaction

from evaluations.models import EvaluationExample

SUITES_DIR = Path(__file__).with_name("suites")  # the JSON files of the built-in suites


def builtin_suite_names() -> list[str]:
    return sorted(path.stem for path in SUITES_DIR.glob("*.json"))


@transaction.atomic
def suite_sync_builtin(*, name: str) -> int:
    """Loads a built-in suite into the database, updating cases by id and deactivating cases
    no longer in the file, so the database always matches the shipped suite. Returns the
    number of active cases."""
    cases = json.loads((SUITES_DIR / f"{name}.json").read_text(encoding="utf-8"))
    seen = []
    for case in cases:
        EvaluationExample.objects.update_or_create(
            suite=name,
            external_id=case["id"],
            defaults={
                "source": EvaluationExample.Source.CURATED,
                "case_type": case["case_type"],
                "ticket_snapshot": case["ticket"],
                "context_snapshot": case.get("context"),
                "acceptable_outcomes": case["acceptable_outcomes"],
                "expected_category": case.get("expected_category", ""),
                "expected_urgency": case.get("expected_urgency", ""),
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
