#!/usr/bin/env python
"""Similar-ticket retrieval at scale: latency and neighbour quality, ours against the naive query.

    .venv/bin/python benchmarks/retrieval.py --rows 1000000 --queries 200

Builds ``--rows`` synthetic labelled tickets in a dedicated database (PostgreSQL ``triage_bench``
by default, created if missing; its name must end in ``_bench``, so the dev and test databases
are never touched) by recombining messages of the Bitext dev split, each ticket keeping its
subject message's category; 3% stay unlabelled (new) so the history filter has work to do.
Then it runs ``--queries`` messages of the Bitext test split through ``similar_tickets_for_text``
(the public function: Django, the statistics and notes queries included) and, on PostgreSQL,
through the naive query (every lexeme OR-ed, ``ORDER BY ts_rank_cd``, ``LIMIT 3``), and prints
p50 / p95 latency and prec@3 for both: the share of the 3 result slots holding a ticket of the
query's own category (an empty slot counts as a miss).

``--query-style ticket`` makes each query a whole ticket (the test message, one to three more of
its intent, sometimes an unrelated one), as ``similar_tickets`` sees a real ticket.
``--database-url sqlite:///var/retrieval_bench.sqlite3`` measures the portable fallback.
The data is rebuilt only when the row count differs (or with ``--rebuild``).
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/work/shared/data/bitext-customer-support/bitext_customer_support.jsonl")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/triage_bench"
UNLABELLED_SHARE = 0.03
NOTE_SHARE = 0.2
BATCH = 100_000

NAIVE_SQL = """
    SELECT c.slug
    FROM tickets_ticket t
    JOIN tickets_category c ON c.id = t.category_id
    CROSS JOIN LATERAL (
        SELECT replace(plainto_tsquery('english', %(text)s)::text, ' & ', ' | ')::tsquery AS q
    ) AS query
    WHERE t.status IN ('triaged', 'resolved') AND t.category_id IS NOT NULL
      AND t.search_vector @@ query.q
    ORDER BY ts_rank_cd(t.search_vector, query.q) DESC
    LIMIT 3
"""
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
Row = tuple[Any, ...]


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic tickets to build")
    parser.add_argument("--queries", type=int, default=200, help="test-split queries to run")
    parser.add_argument("--query-style", choices=("sentence", "ticket"), default="sentence")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--data", type=Path, default=DATA, help="the Bitext JSONL file")
    parser.add_argument("--rebuild", action="store_true", help="reload even if the size matches")
    parser.add_argument("--skip-naive", action="store_true", help="measure only our design")
    args = parser.parse_args()

    parts = urlsplit(args.database_url)
    if not Path(parts.path).stem.endswith("_bench"):
        sys.exit(f"refusing {parts.path!r}: the benchmark database's name must end in _bench")
    if parts.scheme.startswith("postgres"):
        create_postgresql_database(args.database_url)
    setup_django(args.database_url)
    from django.db import connection

    dev, test = load_messages(args.data)
    seconds = ensure_tickets(dev, rows=args.rows, seed=args.seed, rebuild=args.rebuild)
    if seconds is not None:
        print(f"built {args.rows:,} tickets in {seconds:.0f} s")
    queries = make_queries(test, count=args.queries, style=args.query_style, seed=args.seed)

    results = [measure("ours: m of 3 telling lexemes, BM25", queries, similar_categories)]
    if connection.vendor == "postgresql" and not args.skip_naive:
        results.append(measure("naive: OR of all lexemes, ts_rank_cd", queries, naive_categories))
    report(results, rows=args.rows, vendor=connection.vendor, style=args.query_style)


def create_postgresql_database(url: str) -> None:
    """Creates the benchmark database if it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            db.execute(f'CREATE DATABASE "{database}"')


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


def make_queries(test: list[Message], *, count: int, style: str, seed: int) -> list[Message]:
    """``count`` test messages; for the ticket style each grows into a whole ticket's text."""
    rng = random.Random(seed)  # noqa: S311 - reproducible sampling, not security
    chosen = rng.sample(test, min(count, len(test)))
    if style == "sentence":
        return chosen
    by_intent = _by_intent(test)
    return [
        Message(
            "\n".join([message.text, *_more_sentences(rng, message, by_intent, test)]),
            message.category,
            message.intent,
            message.response,
        )
        for message in chosen
    ]


def _by_intent(messages: list[Message]) -> dict[str, list[Message]]:
    grouped: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        grouped[message.intent].append(message)
    return grouped


def _more_sentences(
    rng: random.Random, main: Message, by_intent: dict[str, list[Message]], pool: list[Message]
) -> list[str]:
    """One to three more messages of ``main``'s intent (a customer saying it again) and, half
    of the time, one unrelated message from ``pool`` (the noise real tickets carry)."""
    sentences = [
        message.text for message in rng.choices(by_intent[main.intent], k=rng.randint(1, 3))
    ]
    if rng.random() < 0.5:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(pool).text)
    return sentences


def ensure_tickets(dev: list[Message], *, rows: int, seed: int, rebuild: bool) -> float | None:
    """Loads ``rows`` synthetic tickets unless the database already holds that many; returns the
    seconds spent, or None when nothing was built."""
    from django.db import connection

    from tickets.models import Ticket

    if Ticket.objects.count() == rows and not rebuild:
        print(f"reusing the {rows:,} tickets already in the benchmark database")
        return None
    started = time.perf_counter()
    categories = ensure_categories(sorted({message.category for message in dev}))
    batches = (
        synthetic_batch(dev, categories, start=start, count=min(BATCH, rows - start), seed=seed)
        for start in range(0, rows, BATCH)
    )
    if connection.vendor == "postgresql":
        load_postgresql(batches, rows=rows)
    else:
        load_portable(batches)
    return time.perf_counter() - started


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
) -> tuple[list[Row], list[Row]]:
    """Tickets ``start + 1`` .. ``start + count`` and their notes, reproducibly from ``seed``.

    A ticket's subject is one dev message and its body more (``_more_sentences``); its label is
    the subject message's category, and a fifth carry that message's reply as a staff note.
    """
    rng = random.Random(seed * 1_000_003 + start)  # noqa: S311 - reproducible data
    by_intent = _by_intent(dev)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    tickets: list[Row] = []
    notes: list[Row] = []
    for ticket_id in range(start + 1, start + count + 1):
        main = rng.choice(dev)
        body = " ".join(_more_sentences(rng, main, by_intent, dev))
        created = now - timedelta(minutes=rng.randint(0, 2 * 365 * 24 * 60))
        labelled = rng.random() >= UNLABELLED_SHARE
        status = rng.choice(("resolved", "resolved", "triaged")) if labelled else "new"
        category = categories[main.category] if labelled else None
        urgency = rng.choice(("low", "normal", "normal", "high")) if labelled else ""
        email = f"customer{ticket_id}@example.com"
        subject = main.text[:300]
        tickets.append(
            (ticket_id, subject, body, email, "email", status, category, urgency, *[created] * 3)
        )
        if labelled and rng.random() < NOTE_SHARE:
            notes.append((ticket_id, main.response[:1000], "staff", created))
    return tickets, notes


def load_postgresql(batches: Any, *, rows: int) -> None:
    """COPY in batches (the statistics trigger runs once per batch), with the GIN index built
    once at the end, several times faster than maintaining it row by row."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tickets_ticketnote, tickets_ticket RESTART IDENTITY CASCADE")
        # The definitions are read back from the catalogue, so they stay the migration's.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'tickets_ticket' AND indexdef LIKE %s",
            ["%USING gin%"],
        )
        gin_indexes = cursor.fetchall()
        for name, _ in gin_indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection  # psycopg's own connection: COPY is not in the DB-API
        loaded = 0
        for tickets, notes in batches:
            _copy(raw, "tickets_ticket", TICKET_COLUMNS, tickets)
            _copy(raw, "tickets_ticketnote", NOTE_COLUMNS, notes)
            loaded += len(tickets)
            print(f"  {loaded:,} tickets loaded", flush=True)
        cursor.execute("SELECT setval('tickets_ticket_id_seq', %s)", [max(rows, 1)])
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in gin_indexes:
            cursor.execute(definition)
        for table in ("tickets_ticket", "tickets_ticketnote", "ticket_search_stats"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def _copy(raw: Any, table: str, columns: tuple[str, ...], rows: list[Row]) -> None:
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def load_portable(batches: Any) -> None:
    """Batched executemany, for SQLite and other vendors."""
    from django.db import connection, transaction

    from tickets.models import Ticket, TicketNote

    with transaction.atomic():
        TicketNote.objects.all().delete()
        Ticket.objects.all().delete()
        with connection.cursor() as cursor:
            for tickets, notes in batches:
                for table, columns, rows in (
                    ("tickets_ticket", TICKET_COLUMNS, tickets),
                    ("tickets_ticketnote", NOTE_COLUMNS, notes),
                ):
                    marks = ", ".join(["%s"] * len(columns))
                    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - constants
                    cursor.executemany(insert, rows)


def similar_categories(text: str) -> list[str]:
    from agent.workflows.support_triage.retrieval import similar_tickets_for_text

    return [found.category_slug for found in similar_tickets_for_text(text=text, limit=3)]


def naive_categories(text: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(NAIVE_SQL, {"text": text})
        return [slug for (slug,) in cursor.fetchall()]


def measure(name: str, queries: list[Message], search: Callable[[str], list[str]]) -> Measurement:
    """Runs every query once after a warm-up of ten; returns latencies and prec@3."""
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


def report(results: list[Measurement], *, rows: int, vendor: str, style: str) -> None:
    count = len(results[0].latencies_ms)
    print(f"\n{vendor}, {rows:,} tickets, {count} {style} queries, top 3")
    print(f"{'design':<40} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'prec@3':>7}")
    for result in results:
        print(
            f"{result.name:<40} {result.percentile(0.5):>9.1f} {result.percentile(0.95):>9.1f}"
            f" {statistics.fmean(result.latencies_ms):>9.1f} {result.precision:>7.3f}"
        )
    if len(results) == 2:
        ours, naive = results
        print(
            f"naive / ours: p50 {naive.percentile(0.5) / ours.percentile(0.5):.0f}x,"
            f" p95 {naive.percentile(0.95) / ours.percentile(0.95):.0f}x;"
            f" prec@3 ours - naive: {ours.precision - naive.precision:+.3f}"
        )


if __name__ == "__main__":
    main()
