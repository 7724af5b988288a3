#!/usr/bin/env python
"""Similar-ticket retrieval at scale: latency and neighbour quality, ours against the naive query.

    .venv/bin/python benchmarks/retrieval.py --rows 1000000 --queries 200

Builds ``--rows`` synthetic labelled tickets in a dedicated PostgreSQL database (created if
missing; ``triage_bench`` by default, never the dev or test database) by recombining sentences of
the Bitext dev split, keeping each sentence's category; 3% of the tickets stay unlabelled (new) so
the history filter has something to exclude. Then it runs ``--queries`` messages of the Bitext
test split through ``similar_tickets_for_text`` (the public function, so Django's overhead and the
notes query are included) and through the naive baseline (every lexeme OR-ed, ``ORDER BY
ts_rank_cd``, ``LIMIT 3``), and prints p50 / p95 latency and prec@3 for both: the share of the
3 result slots filled with a ticket of the query's own category (an empty slot counts as a miss).

The database is rebuilt only when its size differs from ``--rows`` (or with ``--rebuild``), so a
second run measures again without reloading.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/work/shared/data/bitext-customer-support/bitext_customer_support.jsonl")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/triage_bench"
UNLABELLED_SHARE = 0.03
NOTE_SHARE = 0.2
BATCH = 100_000

# The naive design from docs/notes: rank every row that shares any word with the query.
BASELINE_SQL = """
    SELECT c.slug
    FROM tickets_ticket t JOIN tickets_category c ON c.id = t.category_id,
         (SELECT replace(plainto_tsquery('english', %(text)s)::text, ' & ', ' | ')::tsquery AS q) AS query
    WHERE t.status IN ('triaged', 'resolved') AND t.category_id IS NOT NULL
      AND t.search_vector @@ q
    ORDER BY ts_rank_cd(t.search_vector, q) DESC
    LIMIT 3
"""


@dataclass(frozen=True)
class Message:
    text: str
    category: str
    intent: str
    response: str


@dataclass(frozen=True)
class Measurement:
    name: str
    latencies_ms: list[float]
    precision: float

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic tickets to build")
    parser.add_argument("--queries", type=int, default=200, help="test-split queries to run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--data", type=Path, default=DATA, help="the Bitext JSONL file")
    parser.add_argument("--rebuild", action="store_true", help="reload even if the size matches")
    parser.add_argument("--skip-baseline", action="store_true", help="measure only our design")
    args = parser.parse_args()

    database = urlsplit(args.database_url).path.lstrip("/")
    if not database.endswith("_bench"):
        sys.exit(f"refusing to use {database!r}: the benchmark database's name must end in _bench")
    create_database(args.database_url)
    setup_django(args.database_url)

    dev, test = load_messages(args.data)
    built = ensure_tickets(dev, rows=args.rows, seed=args.seed, rebuild=args.rebuild)
    if built is not None:
        print(f"built {args.rows:,} tickets in {built:.0f} s")
    queries = random.Random(args.seed).sample(test, min(args.queries, len(test)))

    ours = measure("ours (rare-lexeme candidates, BM25)", queries, similar_categories)
    results = [ours]
    if not args.skip_baseline:
        results.append(measure("naive (OR of all lexemes, ts_rank_cd)", queries, naive_categories))
    report(results, rows=args.rows)


def create_database(url: str) -> None:
    """Creates the benchmark database if it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')


def setup_django(url: str) -> None:
    """Points Django at the benchmark database and brings its schema up to date."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "triage.settings"
    # Production settings refuse to start without a key; nothing here is served or signed.
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret-" + "x" * 40)
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def load_messages(path: Path) -> tuple[list[Message], list[Message]]:
    """The Bitext dev split (history material) and test split (queries)."""
    splits: dict[str, list[Message]] = defaultdict(list)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            message = Message(row["text"], row["category"], row["intent"], row["response"])
            splits[row["split"]].append(message)
    return splits["dev"], splits["test"]


def ensure_tickets(dev: list[Message], *, rows: int, seed: int, rebuild: bool) -> float | None:
    """Loads ``rows`` synthetic tickets unless the database already holds that many; returns the
    seconds spent building, or None when nothing was built."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        (existing,) = cursor.fetchone()
    if existing == rows and not rebuild:
        print(f"reusing the {rows:,} tickets already in the benchmark database")
        return None
    started = time.perf_counter()
    categories = ensure_categories(sorted({message.category for message in dev}))
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tickets_ticketnote, tickets_ticket RESTART IDENTITY CASCADE")
        # Building the GIN index once after the load is several times faster than maintaining it
        # row by row; the definition is read back from the catalogue so it stays the migration's.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'tickets_ticket' AND indexdef LIKE '%%gin%%'"
        )
        gin_indexes = cursor.fetchall()
        for name, _ in gin_indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection  # psycopg's connection: COPY is not part of the DB-API
        with raw.cursor() as copy_cursor:
            for start in range(0, rows, BATCH):
                tickets, notes = synthetic_batch(
                    dev, categories, start=start, count=min(BATCH, rows - start), seed=seed
                )
                copy_rows(copy_cursor, "tickets_ticket", TICKET_COLUMNS, tickets)
                copy_rows(copy_cursor, "tickets_ticketnote", NOTE_COLUMNS, notes)
                print(f"  {start + min(BATCH, rows - start):,} tickets loaded", flush=True)
        cursor.execute("SELECT setval('tickets_ticket_id_seq', %s)", [rows])
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in gin_indexes:
            cursor.execute(definition)
        cursor.execute("VACUUM ANALYZE tickets_ticket")
        cursor.execute("VACUUM ANALYZE tickets_ticketnote")
        cursor.execute("VACUUM ANALYZE ticket_search_stats")
    return time.perf_counter() - started


TICKET_COLUMNS = (
    "id",
    "subject",
    "body",
    "requester_email",
    "channel",
    "status",
    "category_id",
    "urgency",
    "created_at",
    "updated_at",
    "status_changed_at",
)
NOTE_COLUMNS = ("ticket_id", "body", "source", "created_at")


def ensure_categories(names: list[str]) -> dict[str, int]:
    """One Category per Bitext category; returns their ids by Bitext name."""
    from tickets.models import Category

    ids = {}
    for name in names:
        category, _ = Category.objects.get_or_create(
            slug=name.lower().replace("_", "-"),
            defaults={"name": name.replace("_", " ").title()},
        )
        ids[name] = category.pk
    return ids


def synthetic_batch(
    dev: list[Message], categories: dict[str, int], *, start: int, count: int, seed: int
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Tickets ``start`` .. ``start + count`` and their notes, reproducibly from ``seed``.

    A ticket's subject is one dev message; its body is one to three other messages of the same
    intent (a customer saying the same thing again) and, half of the time, one unrelated message
    (the noise real tickets carry). The label is the subject message's category.
    """
    rng = random.Random(seed * 1_000_003 + start)
    by_intent: dict[str, list[Message]] = defaultdict(list)
    for message in dev:
        by_intent[message.intent].append(message)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    tickets: list[tuple[object, ...]] = []
    notes: list[tuple[object, ...]] = []
    for ticket_id in range(start + 1, start + count + 1):
        main = rng.choice(dev)
        sentences = [m.text for m in rng.choices(by_intent[main.intent], k=rng.randint(1, 3))]
        if rng.random() < 0.5:
            sentences.insert(rng.randint(0, len(sentences)), rng.choice(dev).text)
        created = now - timedelta(minutes=rng.randint(0, 2 * 365 * 24 * 60))
        labelled = rng.random() >= UNLABELLED_SHARE
        tickets.append(
            (
                ticket_id,
                main.text[:300],
                " ".join(sentences),
                f"customer{ticket_id}@example.com",
                "email",
                rng.choice(("resolved", "resolved", "triaged")) if labelled else "new",
                categories[main.category] if labelled else None,
                rng.choice(("low", "normal", "normal", "high")) if labelled else "",
                created,
                created,
                created,
            )
        )
        if labelled and rng.random() < NOTE_SHARE:
            notes.append((ticket_id, main.response[:1000], "staff", created))
    return tickets, notes


def copy_rows(
    cursor: object, table: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]
) -> None:
    """Writes ``rows`` with one COPY statement (one trigger run per batch, not per row)."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
        for row in rows:
            copy.write_row(row)


def similar_categories(text: str) -> list[str]:
    from agent.workflows.support_triage.retrieval import similar_tickets_for_text

    return [found.category_slug for found in similar_tickets_for_text(text=text, limit=3)]


def naive_categories(text: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, {"text": text})
        return [slug for (slug,) in cursor.fetchall()]


def measure(name: str, queries: list[Message], search: Callable[[str], list[str]]) -> Measurement:
    """Runs every query once after a short warm-up; returns latencies and prec@3."""
    for message in queries[:10]:
        search(message.text)
    latencies: list[float] = []
    hits = 0
    for message in queries:
        started = time.perf_counter()
        slugs = search(message.text)
        latencies.append((time.perf_counter() - started) * 1000)
        expected = message.category.lower().replace("_", "-")
        hits += sum(slug == expected for slug in slugs[:3])
    print(f"  measured {name}", flush=True)
    return Measurement(name, latencies, hits / (3 * len(queries)))


def report(results: list[Measurement], *, rows: int) -> None:
    print(f"\n{rows:,} tickets, {len(results[0].latencies_ms)} queries, top 3")
    print(f"{'design':<42} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'prec@3':>7}")
    for result in results:
        print(
            f"{result.name:<42} {result.percentile(0.5):>9.1f} {result.percentile(0.95):>9.1f}"
            f" {statistics.fmean(result.latencies_ms):>9.1f} {result.precision:>7.3f}"
        )
    if len(results) == 2:
        ours, naive = results
        print(
            f"naive / ours: p50 {naive.percentile(0.5) / ours.percentile(0.5):.0f}x,"
            f" p95 {naive.percentile(0.95) / ours.percentile(0.95):.0f}x;"
            f" prec@3 difference {ours.precision - naive.precision:+.3f}"
        )


def _unused() -> Iterator[None]:  # pragma: no cover
    yield None


if __name__ == "__main__":
    main()
