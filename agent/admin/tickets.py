"""The ticket pages as the agent app extends them: which queue a ticket waits in (the
manual-triage queue is a filter of the ticket list), its runs and traces, and *Re-run triage*
(on the ticket's page, and as an action on the list)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from agent.admin.runs import TicketWithRunsAdmin
from agent.models import ACTIVE_PROPOSAL_STATUSES, Outcome, TriageProposal
from agent.permissions import user_can_rerun, user_can_see_proposals
from agent.rerun import AgentSwitchedOff, RerunRefused, rerun_blocker, triage_rerun
from agent.selectors import (
    Queue,
    agent_settings_get,
    tickets_in_queue,
    tickets_with_latest_proposal,
)
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
    actions = ["rerun_triage"]
    change_form_template = "admin/agent/ticket_change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return tickets_with_latest_proposal(super().get_queryset(request))

    def get_urls(self) -> list[URLPattern]:
        rerun = path(
            "<path:object_id>/rerun-triage/",
            self.admin_site.admin_view(require_POST(self.rerun_view)),
            name="tickets_ticket_rerun_triage",
        )
        return [rerun, *super().get_urls()]  # before the admin's catch-all object URL

    def get_list_display(self, request: HttpRequest) -> Any:
        """The agent's last word on each ticket, for who may see proposals."""
        columns = list(super().get_list_display(request))
        if user_can_see_proposals(request.user):
            return columns
        return [column for column in columns if column != "triage_state"]

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Which queue a ticket waits in says where the agent's proposal stands: the same."""
        filters = list(super().get_list_filter(request))
        if user_can_see_proposals(request.user):
            return filters
        return [f for f in filters if f is not QueueFilter]

    def has_rerun_permission(self, request: HttpRequest) -> bool:
        return user_can_rerun(request.user)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        if request.GET.get(QueueFilter.parameter_name) == Queue.MANUAL:
            extra_context = {"title": MANUAL_QUEUE_TITLE, **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        ticket = self.get_object(request, unquote(object_id))
        if ticket is not None:
            active = TriageProposal.objects.filter(
                ticket=ticket, status__in=ACTIVE_PROPOSAL_STATUSES
            ).first()
            extra_context = {
                "can_see_agent": user_can_see_proposals(request.user),
                "can_rerun": user_can_rerun(request.user),
                "rerun_blocker": rerun_blocker(ticket=ticket, active=active),
                "agent_enabled": agent_settings_get().agent_enabled,
                **(extra_context or {}),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def rerun_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        # The permission first: a refused user learns nothing, not even which ids exist.
        if not self.has_rerun_permission(request):
            raise PermissionDenied
        ticket = self.get_object(request, unquote(object_id))
        if ticket is None:
            raise Http404(f"no ticket {object_id}")
        try:
            triage_rerun(ticket_id=ticket.pk, requested_by=request.user)
        except RerunRefused as refusal:
            messages.error(request, str(refusal))
        else:
            messages.success(
                request, f"{ticket.reference} is queued for triage again; its new proposal "
                "will wait in the review queue.",
            )  # fmt: skip
        return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[ticket.pk]))

    @admin.action(description="Re-run triage on the selected tickets", permissions=["rerun"])
    def rerun_triage(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        queued, refused = [], []
        for ticket in queryset.order_by("pk"):
            try:
                triage_rerun(ticket_id=ticket.pk, requested_by=request.user)
            except AgentSwitchedOff as off:
                messages.error(request, str(off))  # refused before any write: nothing queued
                return
            except RerunRefused as refusal:
                refused.append(str(refusal))
            else:
                queued.append(ticket.reference)
        if queued:
            messages.success(
                request, f"Queued {len(queued)} tickets for triage again: {', '.join(queued[:20])}"
            )
        if refused:
            messages.warning(
                request, f"Left {len(refused)} as they were: " + "; ".join(refused[:20])
            )

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
