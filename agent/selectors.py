"""Reads on agent data."""

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When

from agent.models import AgentRun, AgentSettings, TraceStep, TriageProposal
from tickets.models import URGENCY_RANK

# The review queue's order: most urgent first (no urgency last), then oldest first. An ordering
# expression, not an annotation: whatever orders proposals by it (the admin's list, its
# foreign-key widgets and filters on other models, the API) resolves it on a plain queryset.
URGENCY_FIRST = Case(
    *[When(urgency=level, then=Value(position)) for level, position in URGENCY_RANK.items()],
    default=Value(len(URGENCY_RANK)),
    output_field=IntegerField(),
)
QUEUE_ORDER = (URGENCY_FIRST.asc(), "created_at", "id")


def agent_settings_get() -> AgentSettings:
    """The single settings row, created with defaults on first use."""
    agent_settings, _ = AgentSettings.objects.get_or_create(pk=1)
    return agent_settings


def proposal_list(*, status: str | None = None) -> QuerySet[TriageProposal]:
    """Proposals in the review queue's order (the admin's queue uses the same order)."""
    proposals = TriageProposal.objects.select_related(
        "ticket", "category", "run", "reviewed_by"
    ).order_by(*QUEUE_ORDER)
    if status:
        proposals = proposals.filter(status=status)
    return proposals


def run_with_steps() -> QuerySet[AgentRun]:
    return AgentRun.objects.prefetch_related(
        # The actor (the reviewer of an approval or rollback step) in the same query.
        Prefetch("steps", queryset=TraceStep.objects.select_related("actor").order_by("position"))
    )
