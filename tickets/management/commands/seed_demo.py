from typing import Any

from django.core.management.base import BaseCommand

from tickets.demo.seed import demo_seed


class Command(BaseCommand):
    help = (
        "Load the demo categories, reply templates, resolved history and new tickets (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = demo_seed()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {summary.categories} categories, {summary.templates} templates; "
                f"{summary.history_created} history tickets and {summary.new_created} new tickets "
                "added."
            )
        )
