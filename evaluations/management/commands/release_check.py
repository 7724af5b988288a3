import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from evaluations.release.baseline import (
    BaselineError,
    baseline_record,
    baseline_section,
    release_check_regressions,
    release_check_section,
)
from evaluations.release.check import ReleaseReport, release_check

EXIT_CODES = {"GO": 0, "SANDBOX": 1, "NO-GO": 2}
EXIT_ERROR = 3  # the check could not run (bad arguments, unknown workflow, unreadable baseline)
MARKS = {"yes": "yes  ", "vague": "VAGUE", "no": "NO   "}


class Command(BaseCommand):
    help = (
        "The go / no-go check: answers the release playbook's eight questions from the live "
        "system. Exit 0 on GO, 1 on SANDBOX, 2 on NO-GO, 3 when it cannot run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", default="support-triage")
        parser.add_argument(
            "--json",
            nargs="?",
            const="-",
            default=None,
            help="Print the report as JSON, or with FILE write the JSON there (text on stdout).",
        )
        parser.add_argument(
            "--regression-baseline",
            type=Path,
            default=None,
            help="Exit 0 unless an answer or the verdict is worse than recorded in this file.",
        )
        parser.add_argument(
            "--record-baseline",
            type=Path,
            default=None,
            help="Record this report's answers in the baseline file (for this database).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = release_check(workflow_name=options["workflow"])
        except LookupError as error:
            raise CommandError(str(error), returncode=EXIT_ERROR) from error
        if options["json"] == "-":
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            self._print(report)
        if options["json"] not in {None, "-"}:
            Path(options["json"]).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        if options["record_baseline"]:
            section = release_check_section(report)
            baseline_record(options["record_baseline"], connection.vendor, "release_check", section)
            self.stderr.write(f"Recorded in {options['record_baseline']} ({connection.vendor}).")
        if options["regression_baseline"]:
            sys.exit(self._against_baseline(report, options["regression_baseline"]))
        sys.exit(EXIT_CODES[report.verdict])

    def _against_baseline(self, report: ReleaseReport, path: Path) -> int:
        try:
            recorded = baseline_section(path, connection.vendor, "release_check")
        except BaselineError as error:
            raise CommandError(str(error), returncode=EXIT_ERROR) from error
        regressions = release_check_regressions(report, recorded)
        for regression in regressions:
            self.stderr.write(self.style.ERROR(f"regression: {regression}"))
        if not regressions:
            self.stdout.write(
                f"No regression against {path} (recorded verdict {recorded['verdict']})."
            )
        return 1 if regressions else 0

    def _print(self, report: ReleaseReport) -> None:
        system = report.as_dict()["system"]
        self.stdout.write(
            f"Release check of {report.facts.workflow.name} · {system['backend']}:"
            f"{system['model']} · {system['prompt_version']} · {system['code_version']} · "
            f"{system['database']} · commit {system['commit'] or '?'}\n"
        )
        for number, answer in enumerate(report.answers, start=1):
            self.stdout.write(f"{number}. [{MARKS[answer.answer]}] {answer.question}")
            for line in answer.evidence:
                self.stdout.write(f"     - {line}")
            for fix in answer.fixes:
                self.stdout.write(self.style.WARNING(f"     fix: {fix}"))
        self.stdout.write("\nRelease table")
        for row in report.table:
            self.stdout.write(
                f"  {row.kind:<10} {row.name:<26} {row.risk:<15} {row.side_effect:<26} "
                f"needs {row.requirement:<28} {'met' if row.met else 'NOT MET'}: {row.how}"
            )
        style = {"GO": self.style.SUCCESS, "SANDBOX": self.style.WARNING}.get(
            report.verdict, self.style.ERROR
        )
        self.stdout.write("\n" + style(f"Verdict: {report.verdict}"))
        for reason in report.reasons:
            self.stdout.write(f"  - {reason}")
