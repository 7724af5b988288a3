#!/usr/bin/env python
"""Chaos: triage under faults, with a real PostgreSQL, Redis and Celery worker (issue 10).

    .venv/bin/python benchmarks/chaos.py                  # 200 tickets, 3 worker kills
    .venv/bin/python benchmarks/chaos.py --quick          # 40 tickets, 1 kill, ~4 minutes

Each scenario runs on a fresh PostgreSQL database ``triage_chaos`` (127.0.0.1:5432, user
postgres; dropped afterwards) and the Redis database ``redis://127.0.0.1:6379/9`` (flushed before
and after), with the offline backend and the demo categories and history (no demo tickets).
It ingests ``--tickets`` tickets through ``ticket_ingest`` while a real worker
(``celery -A triage worker --pool threads --concurrency 4``) triages them, and injects faults:

- ``kill``: ``kill -9`` of the worker's whole process group at seeded random moments while
  tickets are being triaged, ``--kills`` times, restarting the worker each time;
- ``flush``: ``FLUSHDB`` of the broker's Redis database once a share of the tickets settled
  (every queued task is lost).

Beat is not run: this script calls the sweeper (``tickets_requeue_stale``, what beat's
``requeue_stale_tickets`` calls) every few seconds, with ``TRIAGE_STALE_AFTER_SECONDS`` short
and the agent's run timeout 60 s below it, as ``AgentSettings.clean`` demands. Then it waits,
bounded, until every ticket settled, and checks: one active proposal per ticket (a safe stop
has its trace), no ticket with a second proposal or a second finished run, none left in
new / queued / triaging, and at most 2 runs per ticket plus the kills that hit it. It prints
the figures and exits 1 if a check failed. All traffic stays on the loopback.
"""

import argparse
import atexit
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "triage_chaos"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/9"
STALE_AFTER_SECONDS = 70
RUN_TIMEOUT_SECONDS = STALE_AFTER_SECONDS - 60  # agent.models.STALE_MARGIN_SECONDS
SWEEP_EVERY_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 240.0
LOG_DIR = ROOT / "var" / "chaos"
WAITING = ("new", "queued", "triaging")


@dataclass
class Figures:
    scenario: str
    tickets: int = 0
    faults: int = 0
    hit: int = 0  # tickets being triaged when a kill came, summed over the kills
    outcomes: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    stuck: int = 0
    runs: Counter[int] = field(default_factory=Counter)  # runs per ticket -> tickets
    requeued: int = 0
    wall_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def environment() -> dict[str, str]:
    """The environment of this process's Django and of the worker: the same database, broker
    and sweeper threshold."""
    return {
        **os.environ,
        "DATABASE_URL": f"{SERVER_URL}/{DATABASE}",
        "REDIS_URL": REDIS_URL,
        "TRIAGE_AGENT_BACKEND": "offline",
        "TRIAGE_STALE_AFTER_SECONDS": str(STALE_AFTER_SECONDS),
        "DJANGO_DEBUG": "true",
        "DJANGO_LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "1",
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

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')


def database_drop() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def broker_flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweeper.tick()
        if condition():
            return True
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
            figures.failures.append(f"{ticket} has {row['active']} active proposals")
        allowed = 2 + hits.get(row["pk"], 0)
        if row["run_count"] > allowed:
            figures.failures.append(f"{ticket}: more than {allowed} runs")
    proposals = AgentRun.objects.filter(ticket__in=tickets, proposal__isnull=False)
    figures.outcomes.update(proposals.values_list("proposal__outcome", flat=True))
    untraced = proposals.filter(proposal__outcome=Outcome.SAFE_STOP, steps__isnull=True)
    for run in untraced.values_list("ticket_id", flat=True):
        figures.failures.append(f"ticket {run}: safe stop without a trace")


def scenario(name: str, args: argparse.Namespace) -> Figures:
    figures = Figures(scenario=name)
    rng = random.Random(f"{args.seed}-{name}")  # noqa: S311 - seeded fault timing, not secrets
    worker = Worker(LOG_DIR / f"worker-{name}.log")
    worker.log.unlink(missing_ok=True)
    print(f"\n--- {name}: {args.tickets} tickets (worker log {worker.log.relative_to(ROOT)})",
          flush=True)  # fmt: skip
    started = time.monotonic()
    database_create()
    broker_flush()
    try:
        prepare()
        hits = (run_kill if name == "kill" else run_flush)(args, rng, figures, worker)
        figures.wall_seconds = time.monotonic() - started
        check(figures, hits)
    finally:
        worker.kill()
        database_drop()
        broker_flush()
    return figures


def report(results: list[Figures]) -> None:
    print("\n| scenario | tickets | faults | tickets hit | outcomes | duplicates | stuck "
          "| runs per ticket | max runs | requeued | wall |")  # fmt: skip
    print("|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|")
    for figures in results:
        outcomes = ", ".join(f"{kind} {count}" for kind, count in sorted(figures.outcomes.items()))
        runs = ", ".join(f"{runs}: {count}" for runs, count in sorted(figures.runs.items()))
        print(f"| {figures.scenario} | {figures.tickets} | {figures.faults} | {figures.hit} "
              f"| {outcomes} "
              f"| {figures.duplicates} | {figures.stuck} | {runs} | {max(figures.runs, default=0)} "
              f"| {figures.requeued} | {figures.wall_seconds:.0f} s |")  # fmt: skip
    for figures in results:
        for failure in figures.failures[:20]:
            print(f"FAIL {figures.scenario}: {failure}")
        if len(figures.failures) > 20:
            print(f"FAIL {figures.scenario}: ... {len(figures.failures) - 20} more")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--scenario", choices=["kill", "flush", "all"], default="all")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--kill-window", type=float, default=8.0,
                        help="max seconds from ready to kill")  # fmt: skip
    parser.add_argument("--flush-after", type=float, default=0.25,
                        help="share of tickets settled before FLUSHDB")  # fmt: skip
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--quick", action="store_true", help="40 tickets, one kill")
    args = parser.parse_args()
    if args.quick:
        args.tickets, args.kills, args.kill_window = 40, 1, 3.0
        args.settle_timeout = min(args.settle_timeout, 150.0)

    sys.path.insert(0, str(ROOT))
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
    for name in ["kill", "flush"] if args.scenario == "all" else [args.scenario]:
        results.append(scenario(name, args))
    report(results)
    sys.exit(1 if any(figures.failures for figures in results) else 0)


if __name__ == "__main__":
    main()
