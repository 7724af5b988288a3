"""Importing labelled data (JSONL) as evaluation examples, or as resolved history tickets."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from evaluations.models import EvaluationExample
from tickets.models import Category, Ticket, Urgency
from tickets.signals import history_recorded

BATCH = 1000


@dataclass(frozen=True)
class FieldMap:
    """Which columns hold what. ``subject`` is optional (the text's start is used)."""

    text: str = "text"
    subject: str | None = None
    category: str | None = "category"  # None: the data has no category (urgency only)
    urgency: str | None = None
    id: str = "id"
    split: str = "split"
    language: str | None = None  # e.g. "en", "es": evaluations report pass rates per language


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    existing: int = 0
    skipped_split: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    categories_created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    external_id: str
    subject: str
    body: str
    category: str
    urgency: str
    language: str = ""


class RowError(ValueError):
    pass


def examples_import(
    *,
    path: Path,
    suite: str,
    fields: FieldMap,
    split: str | None = None,
    as_history: bool = False,
    create_categories: bool = True,
    urgency_map: dict[str, str] | None = None,
    limit: int | None = None,
) -> ImportReport:
    """Validates every row, reports the rejected ones with reasons, and stores the rest as
    examples of ``suite`` (or, with ``as_history``, as resolved, human-labelled tickets that
    retrieval and the offline backend learn from). Idempotent: known ids are left as they are."""
    report = ImportReport()
    rows = rows_read(
        path=path, fields=fields, split=split, urgency_map=urgency_map, limit=limit, report=report
    )
    with transaction.atomic():
        categories = _categories(
            {row.category for row in rows if row.category}, create_categories, report
        )
        valid = []
        for row in rows:
            if row.category and row.category not in categories:
                report.rejected.append((0, f"{row.external_id}: unknown category {row.category!r}"))
            elif as_history and not row.category:
                report.rejected.append((0, f"{row.external_id}: history needs a category"))
            else:
                valid.append(row)
        store = _store_history if as_history else _store_examples
        store(valid, suite, categories, report)
    return report


def rows_read(
    *,
    path: Path,
    fields: FieldMap,
    split: str | None = None,
    urgency_map: dict[str, str] | None = None,
    limit: int | None = None,
    report: ImportReport | None = None,
) -> list[Row]:
    """The valid rows of a JSONL file (of ``split``, at most ``limit``); rows read, skipped and
    rejected (with reasons) are counted in ``report``."""
    report = report if report is not None else ImportReport()
    rows: list[Row] = []
    for line_number, raw in _lines(path):
        report.rows += 1
        try:
            record = _record(raw, fields, split)
            if record is None:
                report.skipped_split += 1
                continue
            rows.append(_row(record, fields, urgency_map))
        except RowError as error:
            report.rejected.append((line_number, str(error)))
        if limit and len(rows) >= limit:
            break
    return rows


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield number, line


def _record(raw: str, fields: FieldMap, split: str | None) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as error:
        raise RowError(f"not JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise RowError("not a JSON object")
    if split is not None and record.get(fields.split) != split:
        return None
    return record


def _row(record: dict[str, Any], fields: FieldMap, urgency_map: dict[str, str] | None) -> Row:
    subject = str(record.get(fields.subject) or "").strip() if fields.subject else ""
    # A report with a title and an empty body is still a ticket; the title is then its text.
    text = str(record.get(fields.text) or "").strip() or subject
    if not text:
        raise RowError(f"no text in {fields.text!r}")
    if len(text) > Ticket.BODY_MAX_LENGTH:
        raise RowError(f"text longer than {Ticket.BODY_MAX_LENGTH} characters")
    label = str(record.get(fields.category) or "").strip() if fields.category else ""
    if fields.category and not label:
        raise RowError(f"no category in {fields.category!r}")
    if not fields.category and not fields.urgency:
        raise RowError("nothing to evaluate: no category field and no urgency field")
    external_id = str(record.get(fields.id) or "").strip()
    if not external_id:
        raise RowError(f"no id in {fields.id!r}")
    return Row(
        external_id=external_id,
        subject=(subject or _subject_from(text))[: Ticket.SUBJECT_MAX_LENGTH],
        body=text,
        category=_slug(label) if label else "",
        urgency=_urgency(record, fields, urgency_map),
        language=_language(record, fields),
    )


def _urgency(record: dict[str, Any], fields: FieldMap, urgency_map: dict[str, str] | None) -> str:
    if not fields.urgency:
        return ""
    value = str(record.get(fields.urgency) or "").strip()
    mapped = (urgency_map or {}).get(value, value.lower())
    if mapped not in Urgency.values:
        raise RowError(f"urgency {value!r} is not one of {Urgency.values} (use --urgency-map)")
    return mapped


_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,4})?")


def _language(record: dict[str, Any], fields: FieldMap) -> str:
    """A language tag ("en", "pt-br"), lower case; a row without one has none."""
    if not fields.language:
        return ""
    value = str(record.get(fields.language) or "").strip().lower()
    if value and not _LANGUAGE_TAG.fullmatch(value):
        raise RowError(f"language {value[:20]!r} is not a language tag such as 'en' or 'pt-br'")
    return value


def _subject_from(text: str) -> str:
    first_line = text.splitlines()[0]
    return first_line if len(first_line) <= 80 else first_line[:77].rsplit(" ", 1)[0] + "..."


def _slug(label: str) -> str:
    return slugify(label.replace("_", "-")) or "uncategorised"


def _categories(slugs: set[str], create: bool, report: ImportReport) -> dict[str, Category]:
    known = {c.slug: c for c in Category.objects.filter(slug__in=slugs)}
    for slug in sorted(slugs - known.keys()):
        if not create:
            continue
        known[slug] = Category.objects.create(
            slug=slug,
            name=slug.replace("-", " ").capitalize(),
            description="Created by import_examples from labelled data.",
        )
        report.categories_created.append(slug)
    return known


def _store_examples(
    rows: list[Row], suite: str, categories: dict[str, Category], report: ImportReport
) -> None:
    existing = set(
        EvaluationExample.objects.filter(suite=suite).values_list("external_id", flat=True)
    )
    new = [row for row in rows if row.external_id not in existing]
    report.existing += len(rows) - len(new)
    EvaluationExample.objects.bulk_create(
        [
            EvaluationExample(
                suite=suite,
                source=EvaluationExample.Source.IMPORTED,
                external_id=row.external_id,
                ticket_snapshot={
                    "subject": row.subject,
                    "body": row.body,
                    "requester_email": "customer@example.com",
                    "channel": "email",
                },
                acceptable_outcomes=["proposal"],
                expected_category=row.category,
                expected_urgency=row.urgency,
                language=row.language,
            )
            for row in _unique(new)
        ],
        batch_size=BATCH,
    )
    report.created += len(_unique(new))


def _store_history(
    rows: list[Row], suite: str, categories: dict[str, Category], report: ImportReport
) -> None:
    existing = set(
        Ticket.objects.filter(external_id__in=[r.external_id for r in rows]).values_list(
            "external_id", flat=True
        )
    )
    new = _unique([row for row in rows if row.external_id not in existing])
    report.existing += len(rows) - len(new)
    Ticket.objects.bulk_create(
        [
            Ticket(
                external_id=row.external_id,
                subject=row.subject,
                body=row.body,
                requester_email="customer@example.com",
                channel="email",
                status=Ticket.Status.RESOLVED,
                category=categories[row.category],
                urgency=row.urgency or Urgency.NORMAL,
            )
            for row in new
        ],
        batch_size=BATCH,
    )
    report.created += len(new)
    if new:
        history_recorded.send(sender=Ticket, count=len(new))  # the offline model retrains


def _unique(rows: list[Row]) -> list[Row]:
    seen: dict[str, Row] = {}
    for row in rows:
        seen.setdefault(row.external_id, row)
    return list(seen.values())
