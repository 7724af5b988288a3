"""Admin for runs (a read-only trace timeline), the ticket page's runs, and the agent settings."""

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agent.models import AgentRun, AgentSettings, TriageProposal
from agent.permissions import user_can_see_traces
from agent.selectors import agent_settings_get
from tickets.admin import TicketAdmin
from tickets.models import Ticket

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices
    from django.contrib.admin.views.main import ChangeList


def trace_timeline(run: AgentRun) -> SafeString:
    """The run's steps as a readable timeline (payloads are already masked)."""
    steps = list(run.steps.select_related("actor").order_by("position"))
    for step in steps:
        step.pretty_payload = json.dumps(step.payload, indent=2, ensure_ascii=False)  # type: ignore[attr-defined]
    return SafeString(render_to_string("admin/agent/trace_timeline.html", {"steps": steps}))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runs are evidence: nobody edits or deletes them from the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RunPurposeFilter(admin.SimpleListFilter):
    """Production (triage) runs unless evaluation runs, or all runs, are asked for: an
    evaluation run of hundreds of cases would otherwise bury the runs on real tickets."""

    title = "purpose"
    parameter_name = "purpose"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (AgentRun.Purpose.TRIAGE, "Production (triage)"),
            (AgentRun.Purpose.EVALUATION, "Evaluation"),
            (self.ALL, "All"),
        ]

    def chosen(self) -> str:
        value = self.value()
        known = {lookup for lookup, _ in self.lookup_choices}
        return value if value in known else AgentRun.Purpose.TRIAGE

    def choices(self, changelist: "ChangeList") -> Iterator["_ListFilterChoices"]:
        # No "All" of Django's own at the top: the default is production, not everything.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.chosen() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[AgentRun]) -> QuerySet[AgentRun]:
        chosen = self.chosen()
        return queryset if chosen == self.ALL else queryset.filter(purpose=chosen)


@admin.register(AgentRun)
class AgentRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "ticket",
        "purpose",
        "workflow",
        "backend",
        "outcome",
        "status",
        "model_calls",
        "total_tokens",
        "cost_usd",
        "latency_ms",
        "started_at",
    ]
    list_filter = [RunPurposeFilter, "outcome", "status", "backend", "workflow", "started_at"]
    search_fields = ["ticket__subject", "error", "task_id"]
    list_select_related = ["ticket"]
    date_hierarchy = "started_at"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "ticket_link",
                    "proposal_link",
                    "purpose",
                    "workflow",
                    "prompt_version",
                    "backend",
                    "model",
                    "status",
                    "outcome",
                    "risk_level",
                    "error",
                ]
            },
        ),
        (
            "Cost and timing",
            {
                "fields": [
                    "attempt",
                    "model_calls",
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                    "cost_usd",
                    "latency_ms",
                    "context_chars",
                    "context_left_out",
                    "started_at",
                    "finished_at",
                    "task_id",
                ]
            },
        ),
        ("Trace", {"fields": ["timeline"]}),
    ]
    readonly_fields = ["ticket_link", "proposal_link", "timeline"]
    # A run has no page outside the admin; its proposal's review page is linked instead.
    view_on_site = False

    class Media:
        css = {"all": ["agent/trace.css"]}

    @admin.display(description="tokens")
    def total_tokens(self, run: AgentRun) -> int:
        return run.total_tokens

    @admin.display(description="ticket")
    def ticket_link(self, run: AgentRun) -> str:
        if run.ticket_id is None:
            return "-"
        url = reverse("admin:tickets_ticket_change", args=[run.ticket_id])
        return format_html('<a href="{}">{}</a>', url, run.ticket)

    @admin.display(description="proposal")
    def proposal_link(self, run: AgentRun) -> str:
        proposal = TriageProposal.objects.filter(run=run).first()
        if proposal is None:
            return "-"
        url = reverse("admin:agent_triageproposal_change", args=[proposal.pk])
        return format_html(
            '<a href="{}">{} ({})</a>', url, proposal, proposal.get_status_display().lower()
        )

    @admin.display(description="timeline")
    def timeline(self, run: AgentRun) -> SafeString:
        return trace_timeline(run)


class AgentRunInline(admin.TabularInline):
    model = AgentRun
    extra = 0
    fields = ("run_link", "workflow", "backend", "outcome", "status", "started_at")
    readonly_fields = fields
    ordering = ["-started_at"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="run")
    def run_link(self, run: AgentRun) -> str:
        url = reverse("admin:agent_agentrun_change", args=[run.pk])
        return format_html('<a href="{}">Run {} (trace)</a>', url, run.pk)


class TicketWithRunsAdmin(TicketAdmin):
    """The ticket page, extended by the agent app with the ticket's runs and their traces."""

    inlines = [*TicketAdmin.inlines, AgentRunInline]
    readonly_fields = ["latest_trace"]

    class Media:
        css = {"all": ["agent/trace.css"]}

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        return [*fields, "latest_trace"] if self._shows_trace(request, obj) else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "latest_trace"] if self._shows_trace(request, obj) else readonly

    def _shows_trace(self, request: HttpRequest, obj: Any) -> bool:
        """An existing ticket's page shows its latest trace to who may read traces."""
        return obj is not None and user_can_see_traces(request.user)

    @admin.display(description="latest agent trace")
    def latest_trace(self, ticket: Ticket) -> SafeString | str:
        run = AgentRun.objects.filter(ticket=ticket).order_by("-started_at", "-id").first()
        return trace_timeline(run) if run else "No agent run yet."


@admin.register(AgentSettings)
class AgentSettingsAdmin(admin.ModelAdmin):
    """One row; the list page goes straight to it."""

    fields = [
        "agent_enabled",
        "max_steps",
        "token_budget",
        "timeout_seconds",
        "updated_by",
        "updated_at",
    ]
    readonly_fields = ["updated_by", "updated_at"]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        agent_settings = agent_settings_get()
        return HttpResponseRedirect(
            reverse("admin:agent_agentsettings_change", args=[agent_settings.pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AgentSettings, form: Any, change: bool) -> None:
        obj.updated_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
