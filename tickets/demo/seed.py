"""Loads the demo data (written for this project) into the database, idempotently:
``data.json`` holds the categories, reply templates and new tickets, ``history.jsonl`` the
labelled, resolved history (one ticket per line, so that it reads and diffs well)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from tickets.models import Category, ReplyTemplate, Ticket
from tickets.services import ticket_ingest, ticket_record_history
from tickets.signals import history_recorded

DATA_FILE = Path(__file__).with_name("data.json")
HISTORY_FILE = Path(__file__).with_name("history.jsonl")


@dataclass(frozen=True)
class SeedSummary:
    categories: int
    templates: int
    history_created: int
    new_created: int


def demo_data() -> dict[str, Any]:
    """The demo data: ``data.json`` with the history from ``history.jsonl`` as ``history``."""
    data: dict[str, Any] = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    lines = HISTORY_FILE.read_text(encoding="utf-8").splitlines()
    data["history"] = [json.loads(line) for line in lines if line.strip()]
    return data


@transaction.atomic
def demo_seed() -> SeedSummary:
    """Creates or updates the demo categories and templates, and adds the demo tickets that are
    not there yet. Running it twice changes nothing the second time. New tickets go through
    ``ticket_ingest``, so they are queued for triage like any other."""
    data = demo_data()
    categories = {}
    for row in data["categories"]:
        category, _ = Category.objects.update_or_create(
            slug=row["slug"],
            defaults={
                key: row[key] for key in ("name", "description", "routing_rules", "keywords")
            },
        )
        categories[category.slug] = category
    for row in data["reply_templates"]:
        ReplyTemplate.objects.update_or_create(
            category=categories[row["category"]], name=row["name"], defaults={"body": row["body"]}
        )
    history_created = sum(
        ticket_record_history(
            external_id=row["external_id"],
            subject=row["subject"],
            body=row["body"],
            requester_email=row["requester_email"],
            channel=row["channel"],
            category=categories[row["category"]],
            urgency=row["urgency"],
            note=row["note"],
        ).created
        for row in data["history"]
    )
    if history_created:
        history_recorded.send(sender=Ticket, count=history_created)
    new_created = sum(
        ticket_ingest(
            external_id=row["external_id"],
            subject=row["subject"],
            body=row["body"],
            requester_email=row["requester_email"],
            channel=row["channel"],
        ).created
        for row in data["new"]
    )
    return SeedSummary(
        categories=len(categories),
        templates=len(data["reply_templates"]),
        history_created=history_created,
        new_created=new_created,
    )
