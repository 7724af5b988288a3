import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agent.workflows.support_triage.model_store import offline_model_train


class Command(BaseCommand):
    help = (
        "Train the offline backend's models (outcome, human action, category, urgency) on the "
        "corpus, staff reviews and the labelled history, and store them; the newest decides."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Train even if the data did not change."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        model = offline_model_train(force=options["force"])
        self.stdout.write(
            f"{model.version}: trained {model.created_at:%Y-%m-%d %H:%M} UTC in "
            f"{model.training_seconds:.1f} s on {json.dumps(model.rows)}; "
            f"{model.size_bytes / 1e6:.1f} MB"
        )
        for name, measured in model.metrics.items():
            accuracy = measured.get("accuracy")
            shown = "n/a (too little data)" if accuracy is None else f"{accuracy:.3f}"
            self.stdout.write(
                f"  {name:<9} held-out accuracy {shown} on {measured['held_out_rows']} rows"
            )
