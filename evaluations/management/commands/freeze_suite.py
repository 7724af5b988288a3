import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from agent.engine.workflow import workflow_get
from agent.services import TRIAGE_WORKFLOW
from evaluations.builtin import (
    builtin_suite_cases,
    builtin_suite_names,
    suite_hash,
    suite_lock_get,
    suite_lock_path,
)


class Command(BaseCommand):
    help = (
        "Freeze a built-in suite: record its content hash in evaluations/suites/<name>.lock.json. "
        "Runs of a frozen suite count as release evidence only while the file still matches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("suite")
        parser.add_argument("--note", default="", help="Who wrote the suite, and from what.")
        parser.add_argument(
            "--refreeze",
            action="store_true",
            help="Replace an existing lock (a new suite version: earlier evidence stops counting).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["suite"]
        if name not in builtin_suite_names():
            raise CommandError(f"no built-in suite {name!r}; known: {builtin_suite_names()}")
        current = suite_lock_get(name)
        cases = builtin_suite_cases(name)
        content_hash = suite_hash(cases)
        if current is not None and current.content_hash == content_hash:
            self.stdout.write(f"{name} is already frozen as {content_hash}.")
            return
        if current is not None and not options["refreeze"]:
            raise CommandError(
                f"{name} was frozen as {current.content_hash} on {current.frozen_on} and has "
                f"changed since ({content_hash}). Restore it, or pass --refreeze to make this a "
                "new suite version."
            )
        lock = {
            "suite": name,
            "content_hash": content_hash,
            "cases": len(cases),
            "frozen_on": timezone.now().date().isoformat(),
            "offline_model_at_freeze": workflow_get(TRIAGE_WORKFLOW).offline_model().name,
            "note": options["note"] or (current.note if current else ""),
        }
        path = suite_lock_path(name)
        path.write_text(json.dumps(lock, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        self.stdout.write(f"Froze {name} ({len(cases)} cases) as {content_hash} in {path.name}.")
