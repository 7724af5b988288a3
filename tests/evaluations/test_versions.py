"""What an evaluation run records about where and on what it was measured."""

import json
import re

import pytest

from agent.workflows.support_triage.definition import SUPPORT_TRIAGE
from evaluations.builtin import builtin_suite_cases, example_as_case, suite_hash, suite_sync_builtin
from evaluations.models import EvaluationExample
from evaluations.runner import evaluation_run_suite
from evaluations.versions import code_version, database_label, git_commit
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db


def test_the_prompt_version_follows_the_content() -> None:
    """Category rules are part of the prompt: editing them is a new prompt version."""
    category = CategoryFactory(slug="billing", routing_rules="Money taken wrongly: high.")
    before = SUPPORT_TRIAGE.prompt_version()
    assert re.fullmatch(r"support-triage@[0-9a-f]{12}", before)
    assert SUPPORT_TRIAGE.prompt_version() == before  # stable

    category.routing_rules = "Money taken wrongly: urgent."
    category.save()

    assert SUPPORT_TRIAGE.prompt_version() != before


def test_the_offline_model_is_named_by_its_content() -> None:
    name = SUPPORT_TRIAGE.offline_model().name  # the code, then the trained model (or corpus)
    assert re.fullmatch(r"offline@[0-9a-f]{12}/(model|corpus)@[0-9a-f]{12}", name)
    assert re.fullmatch(r"code@[0-9a-f]{12}", code_version())
    assert re.fullmatch(r"([0-9a-f]{12}(\+dirty)?)?", git_commit())  # empty outside git


def test_a_suite_hash_is_the_same_for_the_file_and_the_database() -> None:
    suite_sync_builtin(name="core")
    examples = EvaluationExample.objects.filter(suite="core", is_active=True)
    from_file = suite_hash(builtin_suite_cases("core"))

    assert suite_hash(example_as_case(example) for example in examples) == from_file
    example = examples.first()
    assert example is not None
    example.notes += " (edited)"
    example.save()
    assert suite_hash(example_as_case(e) for e in examples.all()) != from_file


def test_an_evaluation_run_records_what_it_was_measured_on(demo) -> None:  # type: ignore[no-untyped-def]
    EvaluationExample.objects.create(
        suite="mini",
        source="curated",
        ticket_snapshot={"subject": "Charged twice", "body": "Charged twice for INV-1, refund."},
        acceptable_outcomes=["proposal"],
        expected_category="billing",
    )

    run = evaluation_run_suite(suite="mini", backend="offline")

    assert run.workflow == "support-triage"
    assert run.model == SUPPORT_TRIAGE.offline_model().name
    assert run.prompt_version == SUPPORT_TRIAGE.prompt_version()
    assert run.code_version == code_version()
    assert run.suite_hash == suite_hash(
        example_as_case(e) for e in EvaluationExample.objects.filter(suite="mini")
    )
    assert run.environment["database"] == database_label()
    assert run.environment["history_tickets"] > 0
    json.dumps(run.environment)  # stored as JSON
