"""The release suite ships frozen: large enough, every case type, several languages, and its
file still matches the hash it was frozen with. freeze_suite guards the freeze."""

import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluations import builtin
from evaluations.builtin import builtin_suite_cases, suite_hash, suite_lock_get, suite_role
from evaluations.models import CaseType


def test_the_release_suite_is_frozen_as_shipped() -> None:
    lock = suite_lock_get("release")
    cases = builtin_suite_cases("release")

    assert lock is not None
    assert suite_hash(cases) == lock.content_hash, "release.json changed after it was frozen"
    assert lock.cases == len(cases) >= 200
    per_type = Counter(case["case_type"] for case in cases)
    assert set(per_type) == set(CaseType.values)
    assert min(per_type.values()) >= 20, per_type
    languages = Counter(case["language"] for case in cases)
    assert {"es", "de", "fr"} <= set(languages)
    assert 0.15 <= 1 - languages["en"] / len(cases) <= 0.35
    assert len({case["id"] for case in cases}) == len(cases)


def test_suite_roles_are_said_where_figures_are_reported() -> None:
    assert suite_role("release").startswith("release suite: frozen, held out")
    assert suite_role("core").startswith("development suite: the offline rules were tuned on it")
    assert suite_role("corrections") == "corrections from staff review"


@pytest.fixture
def suites(tmp_path: Path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(builtin, "SUITES_DIR", tmp_path)
    case = {
        "id": "s-1",
        "case_type": "normal",
        "ticket": {"subject": "Charged twice", "body": "Refund one."},
        "acceptable_outcomes": ["proposal"],
        "expected_category": "billing",
    }
    (tmp_path / "mini.json").write_text(json.dumps([case]))
    return tmp_path


def test_freeze_suite_records_and_guards_the_hash(suites: Path, capsys, db) -> None:  # type: ignore[no-untyped-def]
    call_command("freeze_suite", "mini", "--note", "written from the definitions")
    lock = json.loads((suites / "mini.lock.json").read_text())
    assert lock["content_hash"] == suite_hash(builtin_suite_cases("mini"))
    assert (lock["cases"], lock["note"]) == (1, "written from the definitions")
    assert lock["offline_model_at_freeze"].startswith("offline@")
    assert builtin.builtin_suite_names() == ["mini"]  # the lock is not a suite

    call_command("freeze_suite", "mini")
    assert "already frozen" in capsys.readouterr().out

    cases = builtin_suite_cases("mini")
    cases[0]["expected_category"] = "outage"  # an edit after freezing
    (suites / "mini.json").write_text(json.dumps(cases))
    with pytest.raises(CommandError, match="has changed since"):
        call_command("freeze_suite", "mini")
    assert json.loads((suites / "mini.lock.json").read_text()) == lock  # untouched

    call_command("freeze_suite", "mini", "--refreeze")
    assert (
        json.loads((suites / "mini.lock.json").read_text())["content_hash"] != lock["content_hash"]
    )
    with pytest.raises(CommandError, match="no built-in suite 'nope'"):
        call_command("freeze_suite", "nope")
