"""The ticket pages as the agent app extends them: which queue a ticket waits in (the
manual-triage queue is a filter of the ticket list), and its runs and traces."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from agent.admin.runs import TicketWithRunsAdmin
from agent.models import Outcome, TriageProposal
from agent.selectors import Queue, tickets_in_queue, tickets_with_latest_proposal
from tickets.models import Ticket

MANUAL_QUEUE_TITLE = "Manual triage: tickets that need a person (no draft awaits review)"


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Queue.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        if self.value() in Queue.values:
            return tickets_in_queue(queue=self.value(), tickets=queryset)  # type: ignore[arg-type]
        return queryset


class TicketTriageAdmin(TicketWithRunsAdmin):
    list_display = [*TicketWithRunsAdmin.list_display, "triage_state"]
    list_filter = [QueueFilter, *TicketWithRunsAdmin.list_filter]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return tickets_with_latest_proposal(super().get_queryset(request))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.GET.get(QueueFilter.parameter_name) == Queue.MANUAL:
            extra_context = {"title": MANUAL_QUEUE_TITLE, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    @admin.display(description="agent")
    def triage_state(self, ticket: Ticket) -> str:
        """The newest proposal: what the agent last said and where its review stands."""
        outcome = getattr(ticket, "latest_outcome", None)
        if outcome is None:
            return "-"
        review = TriageProposal.Status(ticket.latest_review).label  # type: ignore[attr-defined]
        return f"{Outcome(outcome).label} · {review.lower()}"


admin.site.unregister(Ticket)
admin.site.register(Ticket, TicketTriageAdmin)
