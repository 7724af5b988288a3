from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agent.models import AgentRun
from agent.services import triage_ticket_run
from tickets.models import Ticket


class Command(BaseCommand):
    help = "Triage one ticket now, in this process, and print the run's trace."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ticket_id", type=int)
        parser.add_argument(
            "--show", action="store_true", help="Only print the latest run's trace; run nothing."
        )

    def handle(self, *args: Any, ticket_id: int, show: bool, **options: Any) -> None:
        ticket = Ticket.objects.filter(pk=ticket_id).first()
        if ticket is None:
            raise CommandError(f"no ticket #{ticket_id}")
        if not show:
            proposal = triage_ticket_run(ticket_id=ticket_id)
            if proposal is None:
                raise CommandError(
                    f"ticket #{ticket_id} is {ticket.get_status_display().lower()}, not waiting "
                    "for triage; use --show to print its latest trace"
                )
        run = AgentRun.objects.filter(ticket=ticket).order_by("-started_at", "-id").first()
        if run is None:
            raise CommandError(f"ticket #{ticket_id} has no agent run yet")
        self.print_run(run)

    def print_run(self, run: AgentRun) -> None:
        self.stdout.write(
            f"Run {run.pk} · {run.workflow} · {run.backend}:{run.model} · prompt "
            f"{run.prompt_version} · attempt {run.attempt}"
        )
        for step in run.steps.order_by("position"):
            timing = f" ({step.duration_ms} ms)" if step.duration_ms is not None else ""
            self.stdout.write(f"  {step.position:>3}. {step.kind:<16} {step.summary}{timing}")
        tokens = run.total_tokens
        style = self.style.SUCCESS if run.outcome != "safe_stop" else self.style.WARNING
        self.stdout.write(
            style(
                f"Outcome: {run.outcome} · {run.model_calls} model calls · {tokens} tokens · "
                f"${run.cost_usd} · {run.latency_ms} ms"
            )
        )
        if run.error:
            self.stdout.write(self.style.WARNING(f"Error: {run.error}"))
