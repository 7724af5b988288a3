"""Learning from corrections, shown: category accuracy on a labelled dataset's test split after
0, 250, 1,000 and all of its dev rows went through the real correction path.

Each dev row arrives as a ticket (``ticket_ingest``); the offline agent triages it through the
production loop; a reviewer approves it with the right category (``proposal_approve`` with
edits, what the review page calls), which labels the ticket and records the correction. At
each point the offline model is retrained as the beat job would (``offline_model_train``) and
the test split is evaluated through the production loop (``evaluation_run_suite``, what
``run_evals`` calls). Every run is kept, so the evaluation report's learning curve shows the
same figures.

    createdb -h 127.0.0.1 -U postgres triage_curve_banking77
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/triage_curve_banking77
    .venv/bin/python manage.py migrate
    .venv/bin/python benchmarks/learning_curve.py ../shared/data/banking77/banking77.jsonl \\
        --category-field intent

It needs a migrated database without tickets (it refuses one that has any), and takes minutes
(BANKING77: 10,569 corrections and four evaluations of 2,514 tickets).
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triage.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
os.environ["TRIAGE_AGENT_BACKEND"] = "offline"
os.environ.pop("REDIS_URL", None)  # tasks in process: each ticket is triaged as it arrives
import django

django.setup()

import logging  # noqa: E402

from django.contrib.auth.models import Group, User  # noqa: E402
from django.db import connection  # noqa: E402

from agent.review import ProposalEdits, proposal_approve  # noqa: E402
from agent.workflows.support_triage.model_store import offline_model_train  # noqa: E402
from evaluations.importing import FieldMap, examples_import, rows_read  # noqa: E402
from evaluations.runner import evaluation_run_suite  # noqa: E402
from tickets.models import Category, Ticket  # noqa: E402
from tickets.roles import SUPPORT_REVIEWERS  # noqa: E402
from tickets.services import ticket_ingest  # noqa: E402

SEED = 20261201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--category-field", default="category")
    parser.add_argument("--points", default="0,250,1000,all", help="dev rows fed, in order")
    parser.add_argument("--test-limit", type=int, default=None, help="evaluate this many")
    args = parser.parse_args()
    if Ticket.objects.exists():
        sys.exit("learning_curve: the database already has tickets; use a new one")
    logging.getLogger("agent").setLevel(logging.WARNING)
    fields = FieldMap(category=args.category_field)
    suite = f"curve-{args.file.stem}"
    examples_import(path=args.file, suite=suite, fields=fields, split="test", limit=args.test_limit)
    dev = rows_read(path=args.file, fields=fields, split="dev")
    random.Random(SEED).shuffle(dev)  # noqa: S311 - a reproducible order, not a secret
    for slug in sorted({row.category for row in dev}):
        Category.objects.get_or_create(slug=slug, defaults={"name": slug.replace("-", " ")})
    categories = {category.slug: category for category in Category.objects.all()}
    reviewer = User.objects.create_user("curve-reviewer", is_staff=True)
    reviewer.groups.add(Group.objects.get(name=SUPPORT_REVIEWERS))
    points = [len(dev) if p == "all" else min(int(p), len(dev)) for p in args.points.split(",")]
    print(f"{args.file.name}: {len(dev)} dev rows, test suite {suite!r} ({connection.vendor})")
    print(
        f"{'corrections':>11}  {'category acc':>12}  {'given attempted':>15}  "
        f"{'over-refusal':>12}  {'high-band acc':>13}  {'train s':>7}  {'feed s':>6}"
    )
    fed = 0
    for point in points:
        started = time.perf_counter()
        for row in dev[fed:point]:
            ticket = ticket_ingest(
                subject=row.subject,
                body=row.body,
                requester_email="customer@example.com",
                external_id=f"curve-{row.external_id}",
            ).ticket
            proposal = ticket.proposals.filter(status="pending").first()
            if proposal is not None:
                edits = ProposalEdits(
                    category=categories[row.category], urgency=proposal.urgency or "normal"
                )
                proposal_approve(proposal=proposal, reviewer=reviewer, edits=edits)
        feed_seconds = time.perf_counter() - started
        fed = point
        model = offline_model_train()
        run = evaluation_run_suite(suite=suite, backend="offline")
        metrics = run.metrics
        high = metrics.get("per_confidence", {}).get("high")
        print(
            f"{fed:>11}  {_fmt(metrics['category_accuracy']):>12}  "
            f"{_fmt(metrics['accuracy_given_attempted']):>15}  "
            f"{_fmt(metrics['over_refusal_rate']):>12}  "
            f"{_fmt(high['accuracy'] if high else None):>13}  "
            f"{model.training_seconds:>7.1f}  {feed_seconds:>6.1f}",
            flush=True,
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
