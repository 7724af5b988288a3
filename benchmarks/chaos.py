#!/usr/bin/env python
"""Chaos: triage under faults, with a real PostgreSQL, Redis and Celery worker (issue 10).

    .venv/bin/python benchmarks/chaos.py                       # every scenario, full size
    .venv/bin/python benchmarks/chaos.py --quick               # every scenario, bounded
    .venv/bin/python benchmarks/chaos.py --quick --scenario postgres --scenario load

Each scenario runs on a fresh PostgreSQL database (``--database``, default ``triage_chaos``,
on 127.0.0.1:5432, user postgres; dropped afterwards) and a Redis database (``--redis-url``,
default ``redis://127.0.0.1:6379/9``; flushed before and after), with the demo categories and
history (no demo tickets). It ingests ``--tickets`` tickets through ``ticket_ingest`` while a
real worker (``celery -A triage worker --pool threads --concurrency 4``, offline backend unless
said) triages them, and injects faults:

- ``kill``: ``kill -9`` of the worker's whole process group at seeded random moments while
  tickets are being triaged, ``--kills`` times, restarting the worker each time;
- ``flush``: ``FLUSHDB`` of the broker's Redis database once a share of the tickets settled
  (every queued task is lost);
- ``postgres``: on a throwaway cluster of its own (initdb in a temporary directory, port
  ``--pg-port``; the shared server is never restarted), ``pg_ctl stop -m immediate`` while
  tickets are being triaged, ``--pg-down`` seconds down, start again, ``--restarts`` times;
- ``api-faults``: the Anthropic backend (the real SDK) against a local fake Messages API
  (``tests/agent/fake_anthropic.py``) answering ``--fault-rate`` of the calls with a 429, a
  529, a timeout, a dropped connection or a malformed body; tokens and cost recorded must
  equal those of the calls the fake answered well, by its own count;
- ``load``: gunicorn on the loopback, ``--rate`` tickets a second POSTed (and read back) over
  HTTP with an intake token for ``--seconds``: 0 errors, the queue drains, and the resident
  memory of web and worker, sampled every 2 s, does not grow by more than ``--max-rss-growth``.

Beat is not run: this script calls the sweeper (``tickets_requeue_stale``, what beat's
``requeue_stale_tickets`` calls) every few seconds, with ``TRIAGE_STALE_AFTER_SECONDS`` short
and the agent's run timeout 60 s below it, as ``AgentSettings.clean`` demands. Then it waits,
bounded, until every ticket settled, and checks: one active proposal per ticket (a safe stop
has its trace), no ticket with a second proposal or a second finished run, none left in
new / queued / triaging, none lost, no half-written proposal (its run finished with its
outcome, its ticket where that outcome puts it), and at most 2 runs per ticket plus the faults
that hit it. It prints the figures and exits 1 if a check failed. All traffic stays on the
loopback.
"""

import argparse
import atexit
import contextlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.chaos_services import Gunicorn, PostgresCluster, rss_mib  # noqa: E402

STALE_AFTER_SECONDS = 70
RUN_TIMEOUT_SECONDS = STALE_AFTER_SECONDS - 60  # agent.models.STALE_MARGIN_SECONDS
SWEEP_EVERY_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 240.0
LOG_DIR = ROOT / "var" / "chaos"
WAITING = ("new", "queued", "triaging")


@dataclass
class Target:
    """Where the scenarios run: the database server and name (``--database``), the broker
    (``--redis-url``), and what a scenario adds to the worker's environment."""

    server_url: str = "postgres://postgres@127.0.0.1:5432"
    database: str = "triage_chaos"
    redis_url: str = "redis://127.0.0.1:6379/9"
    extra_env: dict[str, str] = field(default_factory=dict)


TARGET = Target()


@dataclass
class Figures:
    scenario: str
    tickets: int = 0
    faults: int = 0
    hit: int = 0  # tickets being triaged when a fault came, summed over the faults
    expected: int = 0  # tickets handed in (ingested, or answered 201 over HTTP)
    outcomes: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    stuck: int = 0
    lost: int = 0  # handed in, but without exactly one active proposal at the end
    runs: Counter[int] = field(default_factory=Counter)  # runs per ticket -> tickets
    requeued: int = 0
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # the scenario's own figures
    failures: list[str] = field(default_factory=list)


def environment() -> dict[str, str]:
    """The environment of this process's Django and of the worker: the same database, broker
    and sweeper threshold."""
    return {
        **os.environ,
        "DATABASE_URL": f"{TARGET.server_url}/{TARGET.database}",
        "REDIS_URL": TARGET.redis_url,
        "TRIAGE_AGENT_BACKEND": "offline",
        "TRIAGE_STALE_AFTER_SECONDS": str(STALE_AFTER_SECONDS),
        "DJANGO_DEBUG": "true",
        "DJANGO_LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "1",
        **TARGET.extra_env,
    }


class Worker:
    """A real Celery worker in its own process group, logging to a file."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = datetime.now(UTC)

    def start(self) -> None:
        self.starts += 1
        self.started_at = datetime.now(UTC)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            out.write(f"\n===== chaos: worker start {self.starts}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "celery"), "-A", "triage", "worker",
                 "--pool", "threads", "--concurrency", "4", "--loglevel", "INFO",
                 "--hostname", f"chaos{self.starts}@127.0.0.1"],
                cwd=ROOT, env=environment(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the worker exited with {self.process.returncode}; see {self.log}"
                )
            with self.log.open("rb") as log:
                log.seek(offset)
                if b" ready." in log.read():
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the worker was not ready after {READY_TIMEOUT_SECONDS:.0f} s")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the worker has not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """``kill -9`` of the worker's whole process group (the main process and its threads)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        with self.log.open("ab") as out:
            out.write(b"\n===== chaos: kill -9\n")


def database_create() -> None:
    import psycopg

    with psycopg.connect(f"{TARGET.server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{TARGET.database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{TARGET.database}"')


def database_drop() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{TARGET.server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{TARGET.database}" WITH (FORCE)')


def broker_flush() -> None:
    import redis

    redis.Redis.from_url(TARGET.redis_url).flushdb()


def prepare() -> None:
    """Migrates the fresh database and loads the demo categories, templates and history, but
    no demo tickets, and no retraining (the worker's corpus models decide)."""
    from django.core.management import call_command
    from django.db import transaction

    from agent.models import AgentSettings
    from tickets.demo.seed import demo_data
    from tickets.models import Category, ReplyTemplate
    from tickets.services import ticket_record_history

    call_command("migrate", "--noinput", verbosity=0)
    data = demo_data()
    with transaction.atomic():
        categories = {}
        for row in data["categories"]:
            fields = {key: row[key] for key in ("name", "description", "routing_rules", "keywords")}
            categories[row["slug"]] = Category.objects.create(slug=row["slug"], **fields)
        for row in data["reply_templates"]:
            ReplyTemplate.objects.create(
                category=categories[row["category"]], name=row["name"], body=row["body"]
            )
        for row in data["history"]:
            ticket_record_history(
                **{key: row[key] for key in ("external_id", "subject", "body", "requester_email")},
                channel=row["channel"], category=categories[row["category"]],
                urgency=row["urgency"], note=row["note"],
            )  # fmt: skip
    agent_settings = AgentSettings(pk=1, timeout_seconds=RUN_TIMEOUT_SECONDS)
    agent_settings.full_clean()  # the code's own rule: the timeout stays 60 s under the sweeper's
    agent_settings.save()


def ingest(count: int, rng: random.Random) -> list[int]:
    from tickets.demo.seed import demo_data
    from tickets.services import ticket_ingest

    data = demo_data()
    texts = data["new"] + data["history"]
    ids = []
    for number in range(count):
        row = rng.choice(texts)
        result = ticket_ingest(
            subject=f"{row['subject']} (chaos {number})",
            body=row["body"],
            requester_email=row["requester_email"],
            external_id=f"chaos-{number}",
        )
        ids.append(result.ticket.pk)
    return ids


class Sweeper:
    """Calls the sweeper every SWEEP_EVERY_SECONDS, as beat would (every minute) in production."""

    def __init__(self) -> None:
        self.last = 0.0
        self.requeued = 0

    def tick(self) -> None:
        from agent.services import tickets_requeue_stale

        if time.monotonic() - self.last >= SWEEP_EVERY_SECONDS:
            self.last = time.monotonic()
            self.requeued += len(tickets_requeue_stale())


def waiting_ids() -> set[int]:
    from tickets.models import Ticket

    return set(Ticket.objects.filter(status__in=WAITING).values_list("pk", flat=True))


def wait_until(condition: Any, *, timeout: float, sweeper: Sweeper) -> bool:
    """Polls ``condition`` (and the sweeper) until it holds; while the database is down (the
    postgres scenario), it does not hold."""
    from django.db import DatabaseError, connections

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            sweeper.tick()
            if condition():
                return True
        except DatabaseError:
            connections.close_all()  # the next poll connects again
        time.sleep(0.5)
    return False


def run_kill(
    args: argparse.Namespace, rng: random.Random, figures: Figures, worker: Worker
) -> dict[int, int]:
    """Kills the worker ``--kills`` times, each at a random moment after it is ready and while
    it triages a ticket; returns the kills that hit each ticket (claimed by the killed worker;
    a ticket left in triaging by an earlier kill is not hit again)."""
    from tickets.models import Ticket

    sweeper = Sweeper()
    hits: Counter[int] = Counter()
    worker.start()
    ingest(args.tickets, rng)
    for _ in range(args.kills):
        time.sleep(rng.uniform(0.5, args.kill_window))
        claimed = Ticket.objects.filter(status="triaging", status_changed_at__gte=worker.started_at)
        if not wait_until(claimed.exists, timeout=60, sweeper=sweeper):
            print("  no ticket was being triaged: no more kills", flush=True)
            break
        worker.kill()
        hit = list(claimed.values_list("pk", flat=True))
        hits.update(hit)
        figures.faults += 1
        figures.hit += len(hit)
        print(f"  kill -9 {figures.faults}: {len(hit)} tickets triaging, "
              f"{len(waiting_ids())} waiting; restarting the worker", flush=True)  # fmt: skip
        worker.start()
    settle(args, figures, sweeper)
    return dict(hits)


def run_flush(
    args: argparse.Namespace, rng: random.Random, figures: Figures, worker: Worker
) -> dict[int, int]:
    """Flushes the broker's Redis database once ``--flush-after`` of the tickets settled."""
    sweeper = Sweeper()
    worker.start()
    ids = ingest(args.tickets, rng)
    settled_enough = wait_until(
        lambda: len(ids) - len(waiting_ids()) >= args.flush_after * len(ids),
        timeout=args.settle_timeout, sweeper=sweeper,
    )  # fmt: skip
    if not settled_enough:
        figures.failures.append("too few tickets settled before the flush")
    broker_flush()
    figures.faults += 1
    print(f"  FLUSHDB: {len(waiting_ids())} tickets still waiting", flush=True)
    settle(args, figures, sweeper)
    return {}


def settle(args: argparse.Namespace, figures: Figures, sweeper: Sweeper) -> None:
    started = time.monotonic()
    if not wait_until(lambda: not waiting_ids(), timeout=args.settle_timeout, sweeper=sweeper):
        print(f"  not settled after {args.settle_timeout:.0f} s", flush=True)
    else:
        print(f"  settled {time.monotonic() - started:.0f} s after the last fault", flush=True)
    figures.requeued = sweeper.requeued


def check(figures: Figures, hits: dict[int, int]) -> None:
    """The assertions, recorded in ``figures.failures``; the figures themselves."""
    from django.db.models import Count, Q

    from agent.models import ACTIVE_PROPOSAL_STATUSES, AgentRun, Outcome
    from tickets.models import Ticket

    tickets = Ticket.objects.exclude(external_id=None).filter(external_id__startswith="chaos-")
    rows = tickets.annotate(
        active=Count("proposals", filter=Q(proposals__status__in=ACTIVE_PROPOSAL_STATUSES),
                     distinct=True),
        proposal_count=Count("proposals", distinct=True),
        run_count=Count("agent_runs", distinct=True),
        finished=Count("agent_runs", filter=Q(agent_runs__status=AgentRun.Status.FINISHED),
                       distinct=True),
    ).values("pk", "status", "active", "proposal_count", "run_count", "finished")  # fmt: skip
    figures.tickets = len(rows)
    if figures.expected > len(rows):
        figures.lost += figures.expected - len(rows)
        figures.failures.append(f"{figures.expected - len(rows)} handed-in tickets not stored")
    for row in rows:
        ticket = f"ticket {row['pk']} ({row['status']}, {row['run_count']} runs)"
        figures.runs[row["run_count"]] += 1
        if row["status"] in WAITING:
            figures.stuck += 1
            figures.failures.append(f"{ticket} is stuck in {row['status']}")
        if row["proposal_count"] > 1 or row["finished"] > 1:
            figures.duplicates += 1
            figures.failures.append(
                f"{ticket} has {row['proposal_count']} proposals, {row['finished']} finished runs"
            )
        if row["active"] != 1:
            figures.lost += 1
            figures.failures.append(f"{ticket} has {row['active']} active proposals")
        allowed = 2 + hits.get(row["pk"], 0)
        if row["run_count"] > allowed:
            figures.failures.append(f"{ticket}: more than {allowed} runs")
    proposals = AgentRun.objects.filter(ticket__in=tickets, proposal__isnull=False)
    figures.outcomes.update(proposals.values_list("proposal__outcome", flat=True))
    untraced = proposals.filter(proposal__outcome=Outcome.SAFE_STOP, steps__isnull=True)
    for run in untraced.values_list("ticket_id", flat=True):
        figures.failures.append(f"ticket {run}: safe stop without a trace")
    check_whole(figures, tickets)


def check_whole(figures: Figures, tickets: Any) -> None:
    """No half-written proposal: each one's run finished with the proposal's outcome and ends
    in an output step, and its ticket is where that outcome puts it (one transaction stores
    all three, so a fault in the middle leaves none of them)."""
    from agent.models import AgentRun, Outcome, TriageProposal
    from agent.services import STATUS_AFTER

    proposals = TriageProposal.objects.filter(ticket__in=tickets).values(
        "ticket_id", "outcome", "status", "run__status", "run__outcome", "ticket__status"
    )
    for row in proposals:
        where = f"ticket {row['ticket_id']}: {row['outcome']} proposal"
        if (row["run__status"], row["run__outcome"]) != (AgentRun.Status.FINISHED, row["outcome"]):
            figures.failures.append(f"{where} of a run {row['run__status']} {row['run__outcome']}")
        pending = row["status"] == TriageProposal.Status.PENDING
        if pending and row["ticket__status"] != STATUS_AFTER[Outcome(row["outcome"])]:
            figures.failures.append(f"{where}, ticket left {row['ticket__status']}")
    unended = AgentRun.objects.filter(ticket__in=tickets, proposal__isnull=False).exclude(
        steps__kind="output"
    )
    for ticket_id in unended.values_list("ticket_id", flat=True):
        figures.failures.append(f"ticket {ticket_id}: its proposal's run has no output step")


def run_postgres(
    args: argparse.Namespace, rng: random.Random, figures: Figures, worker: Worker
) -> dict[int, int]:
    """Crashes the scenario's own PostgreSQL ``--restarts`` times while tickets are being
    triaged: ``pg_ctl stop -m immediate`` (every connection cut, no clean shutdown), down for
    ``--pg-down`` seconds, started again. Tasks that lose the database retry (``autoretry_for``
    in ``agent.tasks``); the sweeper is the last resort."""
    from django.db import connections

    from tickets.models import Ticket

    cluster = CLUSTER[0]
    sweeper = Sweeper()
    hits: Counter[int] = Counter()
    worker.start()
    ingest(args.tickets, rng)
    for _ in range(args.restarts):
        time.sleep(rng.uniform(0.5, args.kill_window))
        claimed = Ticket.objects.filter(status="triaging")
        if not wait_until(claimed.exists, timeout=60, sweeper=sweeper):
            print("  no ticket was being triaged: no more restarts", flush=True)
            break
        hit = list(claimed.values_list("pk", flat=True))
        connections.close_all()
        cluster.crash(down_seconds=args.pg_down)
        hits.update(hit)
        figures.faults += 1
        figures.hit += len(hit)
        print(f"  PostgreSQL crashed and restarted ({figures.faults}): {len(hit)} tickets "
              f"triaging, down {args.pg_down:.0f} s", flush=True)  # fmt: skip
    settle(args, figures, sweeper)
    figures.notes += retry_notes(worker)
    return dict(hits)


def retry_notes(worker: Worker) -> list[str]:
    """How the tickets hit came back: Celery retries the worker logged, and finished runs that
    a retry made (``attempt`` > 1) rather than the sweeper."""
    from agent.models import AgentRun

    retries = worker.log.read_text(errors="replace").count("] retry: Retry in")
    by_retry = AgentRun.objects.filter(status=AgentRun.Status.FINISHED, attempt__gt=1).count()
    return [f"task retries {retries}", f"finished by a retry {by_retry}"]


def run_api_faults(
    args: argparse.Namespace, rng: random.Random, figures: Figures, worker: Worker
) -> dict[int, int]:
    """The Anthropic backend (the real SDK) against a local fake Messages API that answers
    ``--fault-rate`` of the calls with a 429, a 529, a timeout, a dropped connection or a
    malformed body, and the rest with a two-turn triage (a template lookup, then
    ``submit_triage``). Then the accounting: every call the fake saw is counted by a run, and
    the tokens and cost recorded are those of the calls that succeeded."""
    from tests.agent.fake_anthropic import FakeMessagesAPI, FaultyResponder, triage_conversation

    faulty = FaultyResponder(
        triage_conversation, rate=args.fault_rate, seed=args.seed,
        timeout_delay=MODEL_TIMEOUT_SECONDS + 1.0,
    )  # fmt: skip
    sweeper = Sweeper()
    with FakeMessagesAPI([], then=faulty) as base_url:
        TARGET.extra_env = {
            "TRIAGE_AGENT_BACKEND": "anthropic",
            "ANTHROPIC_API_KEY": "chaos-not-a-real-key",
            "ANTHROPIC_BASE_URL": base_url,
            "TRIAGE_MODEL_TIMEOUT_SECONDS": str(MODEL_TIMEOUT_SECONDS),
            "TRIAGE_RETRY_BASE_DELAY": "0.2",
        }
        try:
            worker.start()
            ingest(args.tickets, rng)
            settle(args, figures, sweeper)
        finally:
            TARGET.extra_env = {}
        figures.faults = sum(count for kind, count in faulty.served.items() if kind != "ok")
        figures.hit = retried_tickets()
        check_accounting(figures, faulty, worker)
    return {}


def retried_tickets() -> int:
    """Tickets whose run met at least one fault (it traced a retry)."""
    from agent.models import AgentRun

    retried = AgentRun.objects.filter(ticket__external_id__startswith="chaos-", steps__kind="retry")
    return retried.values("ticket_id").distinct().count()


def check_accounting(figures: Figures, faulty: Any, worker: Worker) -> None:
    """Bounded retries, no crash, and tokens and cost recorded for exactly the calls that the
    fake answered well (its own count, not the runs')."""
    from django.db.models import Max, Sum

    from agent.engine.backends.base import Usage
    from agent.engine.backends.pricing import cost_from_settings
    from agent.engine.loop import Limits
    from agent.models import AgentRun, AgentSettings

    runs = AgentRun.objects.filter(ticket__external_id__startswith="chaos-")
    totals = runs.aggregate(
        calls=Sum("model_calls"), most=Max("model_calls"), input=Sum("input_tokens"),
        output=Sum("output_tokens"), cache_read=Sum("cache_read_tokens"),
        cache_write=Sum("cache_write_tokens"), cost=Sum("cost_usd"),
    )  # fmt: skip
    limits, steps = Limits(), AgentSettings.objects.get(pk=1).max_steps
    bound = steps * (limits.max_transient_retries + 1) + limits.max_malformed_replies + 1
    served = Usage(**faulty.usage)
    expected_cost = cost_from_settings(served).quantize(Decimal("0.000001"))
    received = sum(faulty.served.values())
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(faulty.served.items()))
    figures.notes += [
        f"API calls {received} ({kinds})",
        f"most calls in a run {totals['most']} (bound {bound})",
        f"tokens recorded {totals['input']} in / {totals['output']} out "
        f"(fake served {served.input_tokens} / {served.output_tokens})",
        f"cost ${totals['cost']} (served ${expected_cost})",
    ]
    recorded = (totals["input"], totals["output"], totals["cache_read"], totals["cache_write"])
    if recorded != (
        served.input_tokens, served.output_tokens, served.cache_read_tokens,
        served.cache_write_tokens,
    ):  # fmt: skip
        figures.failures.append(f"tokens recorded {recorded} != served {served}")
    if totals["cost"] != expected_cost:
        figures.failures.append(f"cost recorded {totals['cost']} != {expected_cost}")
    if totals["calls"] != received:
        figures.failures.append(f"runs counted {totals['calls']} model calls, fake saw {received}")
    if (totals["most"] or 0) > bound:
        figures.failures.append(f"a run made {totals['most']} model calls (bound {bound})")
    if set(figures.outcomes) - {"proposal", "safe_stop"}:
        figures.failures.append(f"outcomes the fake never asked for: {dict(figures.outcomes)}")
    if not worker.alive():
        figures.failures.append("the worker died")
    if crashed := worker.log.read_text(errors="replace").count("raised unexpected"):
        figures.failures.append(f"{crashed} tasks raised")


def run_load(
    args: argparse.Namespace, rng: random.Random, figures: Figures, worker: Worker
) -> dict[int, int]:
    """Sustained ingest over real HTTP: gunicorn on the loopback, ``--rate`` tickets a second
    for ``--seconds`` (each POSTed with an intake token, then read back), a worker triaging
    them. Then the queue must drain; the resident memory of web and worker is sampled
    throughout and compared, first (after a warm-up) against last."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from tickets.roles import TICKET_INTAKE

    user = User.objects.create_user(username="chaos-intake")
    user.groups.add(Group.objects.get(name=TICKET_INTAKE))
    token = Token.objects.create(user=user).key
    web = Gunicorn(venv=ROOT / ".venv", root=ROOT, env=environment(), workers=2,
                   log=LOG_DIR / "gunicorn-load.log")  # fmt: skip
    sweeper, memory = Sweeper(), MemorySampler()
    try:
        web.start()
        worker.start()
        memory.start({"web": web.pid, "worker": worker.pid})
        load = http_load(web.url, token, args, rng, sweeper)
        figures.expected = load.created
        started = time.monotonic()
        drained = wait_until(lambda: not waiting_ids() and not broker_queued(),
                             timeout=args.settle_timeout, sweeper=sweeper)  # fmt: skip
        figures.requeued = sweeper.requeued
        drain = time.monotonic() - started
    finally:
        memory.stop()
        web.stop()
    if not drained:
        figures.failures.append(f"the queue did not drain in {args.settle_timeout:.0f} s")
    figures.notes += [
        f"HTTP requests {load.requests} in {args.seconds:.0f} s, errors {load.errors}",
        f"drained {drain:.0f} s after the load",
        *memory.notes(),
    ]
    if load.errors:
        figures.failures += [f"HTTP error: {error}" for error in load.first_errors]
    figures.failures += memory.failures(max_growth=args.max_rss_growth)
    return {}


@dataclass
class Load:
    requests: int = 0
    created: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 10:
            self.first_errors.append(text)


def http_load(
    url: str, token: str, args: argparse.Namespace, rng: random.Random, sweeper: Sweeper
) -> Load:
    """POSTs a ticket every ``1 / --rate`` seconds for ``--seconds``, and GETs each back."""
    from tickets.demo.seed import demo_data

    data = demo_data()
    texts = data["new"] + data["history"]
    load, interval = Load(), 1.0 / args.rate
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    number = 0
    while time.monotonic() - started < args.seconds:
        row = rng.choice(texts)
        body = {
            "subject": f"{row['subject']} (chaos load {number})",
            "body": row["body"],
            "requester_email": row["requester_email"],
            "external_id": f"chaos-load-{number}",
        }
        status, answer = http_request(url, "POST", "/api/tickets/", headers, body)
        load.requests += 1
        if status != 201:
            load.error(f"POST ticket {number}: {status} {answer[:200]!r}")
        else:
            load.created += 1
            ticket_id = json.loads(answer)["id"]
            status, answer = http_request(url, "GET", f"/api/tickets/{ticket_id}/", headers)
            load.requests += 1
            if status != 200:
                load.error(f"GET ticket {ticket_id}: {status} {answer[:200]!r}")
        number += 1
        sweeper.tick()
        time.sleep(max(0.0, started + number * interval - time.monotonic()))
    return load


def http_request(
    url: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, bytes]:
    """One request on a new connection: its status (0 when it failed) and body."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError as error:
        return 0, repr(error).encode()
    finally:
        connection.close()


def broker_queued() -> int:
    import redis

    return int(redis.Redis.from_url(TARGET.redis_url).llen("celery"))


class MemorySampler:
    """Samples the resident memory of named process trees every 2 s, in a thread."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pids: dict[str, int]) -> None:
        started = time.monotonic()

        def sample() -> None:
            while not self._stop.is_set():
                for name, pid in pids.items():
                    self.samples.setdefault(name, []).append(
                        (time.monotonic() - started, rss_mib(pid))
                    )
                self._stop.wait(2.0)

        self._thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def first_last(self, name: str) -> tuple[float, float]:
        """The first sample after a warm-up (a tenth of the samples: imports and caches fill
        on the first requests), and the last."""
        values = [rss for _, rss in self.samples.get(name, [])] or [0.0]
        return values[len(values) // 10], values[-1]

    def notes(self) -> list[str]:
        texts = []
        for name in self.samples:
            first, last = self.first_last(name)
            peak = max(rss for _, rss in self.samples[name])
            texts.append(f"{name} RSS {first:.0f} -> {last:.0f} MiB (peak {peak:.0f})")
        return texts

    def failures(self, *, max_growth: float) -> list[str]:
        found = []
        for name in self.samples:
            first, last = self.first_last(name)
            if last > first * (1 + max_growth):
                found.append(f"{name} RSS grew {first:.0f} -> {last:.0f} MiB")
        return found


SCENARIOS = {
    "kill": run_kill,
    "flush": run_flush,
    "postgres": run_postgres,
    "api-faults": run_api_faults,
    "load": run_load,
}
MODEL_TIMEOUT_SECONDS = 2.0  # api-faults: the per-call timeout; the fake's timeouts exceed it
CLUSTER: list[PostgresCluster] = []  # postgres: the scenario's own database server


@contextlib.contextmanager
def database_server(name: str, args: argparse.Namespace) -> Iterator[None]:
    """The database server a scenario runs on: for ``postgres`` a throwaway cluster of its own
    (the shared server is never restarted), else ``TARGET.server_url``."""
    if name != "postgres":
        yield
        return
    from django.db import connections

    cluster = PostgresCluster(port=args.pg_port, log=LOG_DIR / "postgres.log")
    shared = TARGET.server_url
    database = connections["default"].settings_dict
    shared_port = database["PORT"]
    try:
        cluster.start()
        CLUSTER[:] = [cluster]
        connections.close_all()
        TARGET.server_url, database["PORT"] = cluster.url, str(args.pg_port)
        yield
    finally:
        connections.close_all()
        TARGET.server_url, database["PORT"] = shared, shared_port
        CLUSTER.clear()
        cluster.stop()


def scenario(name: str, args: argparse.Namespace) -> Figures:
    figures = Figures(scenario=name)
    rng = random.Random(f"{args.seed}-{name}")  # noqa: S311 - seeded fault timing, not secrets
    worker = Worker(LOG_DIR / f"worker-{name}.log")
    worker.log.unlink(missing_ok=True)
    size = f"{args.seconds:.0f} s, {args.rate:g}/s" if name == "load" else f"{args.tickets} tickets"
    print(f"\n--- {name}: {size} (worker log {worker.log.relative_to(ROOT)})", flush=True)
    started = time.monotonic()
    with database_server(name, args):
        database_create()
        broker_flush()
        try:
            prepare()
            figures.expected = args.tickets
            hits = SCENARIOS[name](args, rng, figures, worker)
            figures.wall_seconds = time.monotonic() - started
            check(figures, hits)
        finally:
            worker.kill()
            database_drop()
            broker_flush()
    return figures


def report(results: list[Figures]) -> None:
    print("\n| scenario | tickets | faults | tickets hit | outcomes | duplicates | stuck | lost "
          "| runs per ticket | max runs | requeued | wall | figures |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---|")
    for figures in results:
        outcomes = ", ".join(f"{kind} {count}" for kind, count in sorted(figures.outcomes.items()))
        runs = ", ".join(f"{runs}: {count}" for runs, count in sorted(figures.runs.items()))
        print(f"| {figures.scenario} | {figures.tickets} | {figures.faults} | {figures.hit} "
              f"| {outcomes} "
              f"| {figures.duplicates} | {figures.stuck} | {figures.lost} | {runs} "
              f"| {max(figures.runs, default=0)} | {figures.requeued} "
              f"| {figures.wall_seconds:.0f} s | {'; '.join(figures.notes)} |")  # fmt: skip
    for figures in results:
        for failure in figures.failures[:20]:
            print(f"FAIL {figures.scenario}: {failure}")
        if len(figures.failures) > 20:
            print(f"FAIL {figures.scenario}: ... {len(figures.failures) - 20} more")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], action="append",
                        help="repeatable; default all")  # fmt: skip
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--kill-window", type=float, default=8.0,
                        help="max seconds from ready to kill")  # fmt: skip
    parser.add_argument("--flush-after", type=float, default=0.25,
                        help="share of tickets settled before FLUSHDB")  # fmt: skip
    parser.add_argument("--restarts", type=int, default=2, help="postgres: crashes")
    parser.add_argument("--pg-down", type=float, default=3.0,
                        help="postgres: seconds the server stays down each time")  # fmt: skip
    parser.add_argument("--pg-port", type=int, default=5439,
                        help="postgres: port of the scenario's own server")  # fmt: skip
    parser.add_argument("--fault-rate", type=float, default=0.3,
                        help="api-faults: share of API calls answered with a fault")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=180.0, help="load: how long")
    parser.add_argument("--rate", type=float, default=1.0, help="load: tickets per second")
    parser.add_argument("--max-rss-growth", type=float, default=0.25,
                        help="load: largest allowed growth of RSS, first to last")  # fmt: skip
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--database", default=TARGET.database,
                        help="created and dropped on the server at 127.0.0.1:5432")  # fmt: skip
    parser.add_argument("--redis-url", default=TARGET.redis_url, help="flushed before and after")
    parser.add_argument("--quick", action="store_true",
                        help="40 tickets, one kill, one restart, 30 s of load")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.kills, args.restarts, args.kill_window = 40, 1, 1, 3.0
        args.seconds = min(args.seconds, 30.0)
        args.settle_timeout = min(args.settle_timeout, 150.0)
    TARGET.database, TARGET.redis_url = args.database, args.redis_url
    names = list(SCENARIOS) if not args.scenario or "all" in args.scenario else args.scenario

    os.environ.update(environment())
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"  # here, requeues only; the worker logs at INFO
    os.environ["DJANGO_SETTINGS_MODULE"] = "triage.settings"
    import django

    django.setup()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    atexit.register(broker_flush)
    # A SIGTERM unwinds like Ctrl-C, so every scenario's ``finally`` kills its worker and drops
    # the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    for name in names:
        results.append(scenario(name, args))
    report(results)
    sys.exit(1 if any(figures.failures for figures in results) else 0)


if __name__ == "__main__":
    main()
