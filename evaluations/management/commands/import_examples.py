from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluations.importing import FieldMap, examples_import


class Command(BaseCommand):
    help = (
        "Import labelled rows from a JSONL file as evaluation examples of a suite, or with "
        "--as-history as resolved, human-labelled tickets. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--suite", required=True, help="Suite name for the examples.")
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--subject-field", default=None)
        parser.add_argument(
            "--category-field",
            default="category",
            help="Column holding the category; 'none' for data without one (urgency only).",
        )
        parser.add_argument("--urgency-field", default=None)
        parser.add_argument("--id-field", default="id")
        parser.add_argument("--split-field", default="split")
        parser.add_argument(
            "--language-field",
            default=None,
            help="Column holding a language tag (en, es, ...); reports then give each language.",
        )
        parser.add_argument("--split", default=None, help="Only rows whose split is this.")
        parser.add_argument(
            "--urgency-map",
            default="",
            help="Map source values to urgencies, e.g. 'Blocker=urgent,Critical=high'.",
        )
        parser.add_argument(
            "--as-history",
            action="store_true",
            help="Store rows as resolved tickets for retrieval, not as examples.",
        )
        parser.add_argument(
            "--refuse-unknown-categories",
            action="store_true",
            help="Reject rows whose category does not exist instead of creating it.",
        )
        parser.add_argument("--limit", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            urgency_map = dict(
                pair.split("=", 1) for pair in options["urgency_map"].split(",") if pair.strip()
            )
        except ValueError as error:
            raise CommandError(
                "--urgency-map takes 'Source=urgency' pairs, comma-separated"
            ) from error
        report = examples_import(
            path=path,
            suite=options["suite"],
            fields=FieldMap(
                text=options["text_field"],
                subject=options["subject_field"],
                category=None if options["category_field"] == "none" else options["category_field"],
                urgency=options["urgency_field"],
                id=options["id_field"],
                split=options["split_field"],
                language=options["language_field"],
            ),
            split=options["split"],
            as_history=options["as_history"],
            create_categories=not options["refuse_unknown_categories"],
            urgency_map=urgency_map,
            limit=options["limit"],
        )
        kind = (
            "history tickets" if options["as_history"] else f"examples in suite {options['suite']}"
        )
        self.stdout.write(
            f"{report.rows} rows read: {report.created} new {kind}, {report.existing} already "
            f"there, {report.skipped_split} in other splits, {len(report.rejected)} rejected."
        )
        if report.categories_created:
            self.stdout.write(f"Categories created: {', '.join(report.categories_created)}")
        for line, reason in report.rejected[:20]:
            self.stderr.write(
                f"  rejected line {line}: {reason}" if line else f"  rejected {reason}"
            )
        if len(report.rejected) > 20:
            self.stderr.write(f"  ... and {len(report.rejected) - 20} more")
        if report.rejected and not report.created and not report.existing:
            raise CommandError("no valid rows")
