"""python manage.py import_examples: field mapping, splits, history, validation, idempotence."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluations.models import EvaluationExample
from tests.factories import CategoryFactory
from tickets.models import Category, Ticket

pytestmark = pytest.mark.django_db

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _write(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


ROWS = [
    {
        "id": "r1",
        "text": "My card was charged twice",
        "intent": "card_payment_fee_charged",
        "split": "test",
    },
    {"id": "r2", "text": "Where is my new card?", "intent": "card_arrival", "split": "test"},
    {"id": "r3", "text": "How do I top up?", "intent": "top_up", "split": "dev"},
    {"id": "r4", "text": "", "intent": "card_arrival", "split": "test"},
    {"id": "r5", "text": "No label here", "split": "test"},
    "{not json",
]


def test_imports_examples_with_mapping_and_split(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, ROWS)

    call_command(
        "import_examples",
        str(path),
        "--suite",
        "bank",
        "--category-field",
        "intent",
        "--split",
        "test",
    )

    examples = EvaluationExample.objects.filter(suite="bank").order_by("external_id")
    assert [(e.external_id, e.expected_category) for e in examples] == [
        ("r1", "card-payment-fee-charged"),
        ("r2", "card-arrival"),
    ]
    assert examples[0].ticket_snapshot["body"] == "My card was charged twice"
    assert examples[0].acceptable_outcomes == ["proposal"]
    assert set(Category.objects.values_list("slug", flat=True)) == {
        "card-payment-fee-charged",
        "card-arrival",
    }
    out, err = capsys.readouterr()
    assert (
        "6 rows read: 2 new examples in suite bank, 0 already there, 1 in other splits, "
        "3 rejected." in out
    )
    assert "rejected line 4: no text in 'text'" in err
    assert "rejected line 5: no category in 'intent'" in err
    assert "rejected line 6: not JSON" in err


def test_a_language_column_is_kept_and_a_bad_tag_is_rejected(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """With --language-field each example keeps its language (the run then reports pass rates
    per language); a value that is not a language tag rejects its row, with the reason."""
    path = _write(
        tmp_path,
        [
            {"id": "l1", "text": "Me cobraron dos veces", "intent": "refund", "lang": "ES"},
            {"id": "l2", "text": "Zweimal abgebucht", "intent": "refund", "lang": "de"},
            {"id": "l3", "text": "Charged twice", "intent": "refund"},
            {"id": "l4", "text": "Débité deux fois", "intent": "refund", "lang": "French!"},
        ],
    )

    call_command(
        "import_examples",
        str(path),
        "--suite",
        "languages",
        "--category-field",
        "intent",
        "--language-field",
        "lang",
    )

    examples = EvaluationExample.objects.filter(suite="languages").order_by("external_id")
    assert [(e.external_id, e.language) for e in examples] == [
        ("l1", "es"),
        ("l2", "de"),
        ("l3", ""),
    ]
    _, err = capsys.readouterr()
    assert "rejected line 4: language 'french!' is not a language tag" in err


def test_import_is_idempotent(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS[:2])

    call_command("import_examples", str(path), "--suite", "bank", "--category-field", "intent")
    call_command("import_examples", str(path), "--suite", "bank", "--category-field", "intent")

    assert EvaluationExample.objects.filter(suite="bank").count() == 2


def test_as_history_creates_resolved_labelled_tickets(tmp_path: Path) -> None:
    path = _write(tmp_path, ROWS[:3])

    call_command(
        "import_examples",
        str(path),
        "--suite",
        "bank",
        "--category-field",
        "intent",
        "--split",
        "dev",
        "--as-history",
    )
    call_command(
        "import_examples",
        str(path),
        "--suite",
        "bank",
        "--category-field",
        "intent",
        "--split",
        "dev",
        "--as-history",
    )

    ticket = Ticket.objects.get()
    assert (ticket.external_id, ticket.status, ticket.category.slug, ticket.urgency) == (
        "r3",
        "resolved",
        "top-up",
        "normal",
    )
    assert not EvaluationExample.objects.exists()


def test_refusing_unknown_categories(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    CategoryFactory(slug="card-arrival")
    path = _write(tmp_path, ROWS[:2])

    call_command(
        "import_examples",
        str(path),
        "--suite",
        "bank",
        "--category-field",
        "intent",
        "--refuse-unknown-categories",
    )

    assert list(EvaluationExample.objects.values_list("external_id", flat=True)) == ["r2"]
    assert "unknown category 'card-payment-fee-charged'" in capsys.readouterr().err
    assert not Category.objects.filter(slug="card-payment-fee-charged").exists()


def test_urgency_mapping_and_bad_values(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _write(
        tmp_path,
        [
            {
                "id": "h1",
                "summary": "NPE in scheduler",
                "description": "Stack trace...",
                "component": "yarn",
                "priority": "Blocker",
            },
            {
                "id": "h2",
                "summary": "Typo",
                "description": "In docs",
                "component": "docs",
                "priority": "Whenever",
            },
        ],
    )

    call_command(
        "import_examples",
        str(path),
        "--suite",
        "bugs",
        "--text-field",
        "description",
        "--subject-field",
        "summary",
        "--category-field",
        "component",
        "--urgency-field",
        "priority",
        "--urgency-map",
        "Blocker=urgent,Critical=high",
    )

    example = EvaluationExample.objects.get()
    assert (example.ticket_snapshot["subject"], example.expected_urgency) == (
        "NPE in scheduler",
        "urgent",
    )
    assert "urgency 'Whenever' is not one of" in capsys.readouterr().err


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_examples", str(tmp_path / "missing.jsonl"), "--suite", "x")
    with pytest.raises(CommandError, match="no valid rows"):
        call_command("import_examples", str(_write(tmp_path, ["{bad"])), "--suite", "x")
    with pytest.raises(CommandError, match="--urgency-map takes"):
        call_command(
            "import_examples",
            str(_write(tmp_path, ROWS[:1])),
            "--suite",
            "x",
            "--urgency-map",
            "nonsense",
        )


@pytest.mark.skipif(not SHARED.exists(), reason="the shared datasets are not beside the repo")
@pytest.mark.parametrize(
    ("file", "arguments", "category"),
    [
        ("bitext-customer-support/bitext_customer_support.jsonl", [], "category"),
        ("banking77/banking77.jsonl", ["--category-field", "intent"], "intent"),
    ],
)
def test_the_shared_datasets_import(file: str, arguments: list[str], category: str) -> None:
    call_command(
        "import_examples",
        str(SHARED / file),
        "--suite",
        "real",
        "--split",
        "test",
        "--limit",
        "50",
        *arguments,
    )

    assert EvaluationExample.objects.filter(suite="real").count() == 50


def test_urgency_only_data_without_categories(tmp_path: Path) -> None:
    """Like the Hadoop priority set: a title, sometimes an empty body, a priority, no category."""
    path = _write(
        tmp_path,
        [
            {
                "id": "h1",
                "summary": "NameNode crashes on restart",
                "description": "",
                "priority": "Blocker",
            },
            {"id": "h2", "summary": "Typo in docs", "description": "teh", "priority": "Trivial"},
        ],
    )
    arguments = [
        "--suite",
        "bugs",
        "--text-field",
        "description",
        "--subject-field",
        "summary",
        "--category-field",
        "none",
        "--urgency-field",
        "priority",
        "--urgency-map",
        "Blocker=urgent,Trivial=low",
    ]

    call_command("import_examples", str(path), *arguments)
    with pytest.raises(CommandError, match="no valid rows"):
        call_command("import_examples", str(path), *arguments, "--as-history")

    examples = {e.external_id: e for e in EvaluationExample.objects.all()}
    assert examples["h1"].ticket_snapshot["body"] == "NameNode crashes on restart"
    assert (examples["h1"].expected_category, examples["h1"].expected_urgency) == ("", "urgent")
    assert not Category.objects.exists()
    assert not Ticket.objects.exists()
