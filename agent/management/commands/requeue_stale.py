from typing import Any

from django.core.management.base import BaseCommand

from agent.services import tickets_requeue_stale


class Command(BaseCommand):
    help = "Re-enqueue tickets whose triage was lost (what Celery beat runs every minute)."

    def handle(self, *args: Any, **options: Any) -> None:
        ticket_ids = tickets_requeue_stale()
        self.stdout.write(
            f"Requeued {len(ticket_ids)} stale tickets{': ' if ticket_ids else '.'}"
            + ", ".join(f"#{ticket_id}" for ticket_id in ticket_ids)
        )
