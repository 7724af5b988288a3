"""Reads on agent data."""

from django.db.models import Prefetch, QuerySet

from agent.models import AgentRun, AgentSettings, TraceStep, TriageProposal


def agent_settings_get() -> AgentSettings:
    """The single settings row, created with defaults on first use."""
    agent_settings, _ = AgentSettings.objects.get_or_create(pk=1)
    return agent_settings


def proposal_list(*, status: str | None = None) -> QuerySet[TriageProposal]:
    proposals = TriageProposal.objects.select_related("ticket", "category", "run", "reviewed_by")
    if status:
        proposals = proposals.filter(status=status)
    return proposals


def run_with_steps() -> QuerySet[AgentRun]:
    return AgentRun.objects.prefetch_related(
        # The actor (the reviewer of an approval or rollback step) in the same query.
        Prefetch("steps", queryset=TraceStep.objects.select_related("actor").order_by("position"))
    )
