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
            if not isinstance(measured, dict):
                continue  # not a model's figures (the corpus digest)
            accuracy = measured.get("accuracy")
            shown = "n/a (too little data)" if accuracy is None else f"{accuracy:.3f}"
            self.stdout.write(
                f"  {name:<9} held-out accuracy {shown} on {measured['held_out_rows']} rows"
            )
            if calibration := measured.get("calibration"):
                self._calibration(calibration)

    def _calibration(self, calibration: dict[str, Any]) -> None:
        """The confidence bands: thresholds chosen on one half of the held-out rows, accuracy
        per band and calibration error measured on the other."""
        thresholds = calibration["thresholds"]
        self.stdout.write(
            f"            confidence: temperature {calibration['temperature']:.2f}, thresholds "
            + (", ".join(f"{band} >= {t:.3f}" for band, t in thresholds.items()) or "none reached")
            + f" (chosen on {calibration['fitted_on_rows']} rows)"
        )
        for band, stats in calibration["bands"].items():
            accuracy = "n/a" if stats["accuracy"] is None else f"{stats['accuracy']:.3f}"
            self.stdout.write(
                f"            {band:<6} {stats['rows']:>5} of {calibration['measured_on_rows']} "
                f"rows, accuracy {accuracy}"
            )
        ece = calibration["ece"]
        self.stdout.write(
            f"            expected calibration error {ece['uncalibrated']:.3f} before scaling, "
            f"{ece['calibrated']:.3f} after"
        )
