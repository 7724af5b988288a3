"""Reads on agent data, and the queues a ticket can be in."""

from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    TextChoices,
    Value,
    When,
)

from agent.models import AgentRun, AgentSettings, Outcome, TraceStep, TriageProposal
from tickets.models import URGENCY_RANK, Ticket, Urgency

# A draft without an urgency (a clarification, refusal or safe stop: the agent did not judge
# it) ranks with high, not below low: nobody has judged it yet, and the agent stops on exactly
# the tickets (refunds, contradictions, failures) that a person must not miss.
URGENCY_FIRST = Case(
    *[When(urgency=level, then=Value(position)) for level, position in URGENCY_RANK.items()],
    default=Value(URGENCY_RANK[Urgency.HIGH]),
    output_field=IntegerField(),
)
# The review queue's order: what needs a person first (a human action, then a suspected
# injection), then the most urgent, then the oldest. One order for the admin and the API; an
# ordering expression, not an annotation, so that whatever orders proposals by it (the admin's
# list, its foreign-key widgets and filters on other models, the API) resolves it on a plain
# queryset.
QUEUE_ORDER = (
    "-requires_human_action",
    "-injection_suspected",
    URGENCY_FIRST.asc(),
    "created_at",
    "id",
)

# Statuses of a ticket that the agent still holds: the sweeper (``tickets_requeue_stale``)
# requeues any of them that waits too long, so no person needs to look.
IN_FLIGHT_STATUSES = (Ticket.Status.NEW, Ticket.Status.QUEUED, Ticket.Status.TRIAGING)
# Statuses of a ticket that carries its labels: nothing is owed to triage any more.
DONE_STATUSES = (Ticket.Status.TRIAGED, Ticket.Status.RESOLVED)


class Queue(TextChoices):
    """Where a ticket waits. Every ticket is in at least one (``tickets_in_queue``)."""

    REVIEW = "review", "Review queue: a draft awaits review"
    MANUAL = "manual", "Manual triage: needs a person"
    IN_FLIGHT = "in_flight", "With the agent: queued or being triaged"
    DONE = "done", "Triaged or resolved"


def agent_settings_get() -> AgentSettings:
    """The single settings row, created with defaults on first use."""
    agent_settings, _ = AgentSettings.objects.get_or_create(pk=1)
    return agent_settings


def proposal_list(*, status: str | None = None) -> QuerySet[TriageProposal]:
    """Proposals (of one review state, if given) in the queue's order (``QUEUE_ORDER``)."""
    proposals = TriageProposal.objects.select_related(
        "ticket", "category", "run", "reviewed_by"
    ).order_by(*QUEUE_ORDER)
    if status:
        proposals = proposals.filter(status=status)
    return proposals


def tickets_in_queue(*, queue: str, tickets: QuerySet[Ticket] | None = None) -> QuerySet[Ticket]:
    """The tickets (of ``tickets``, else all) in one queue.

    - review: a proposal is pending review (the review queue lists it);
    - manual: not with the agent and not done, and no draft a reviewer could approve is
      pending: an approval undone, a proposal rejected, a refusal or clarification approved
      for a person to act on, a safe stop (a failure, or the kill switch) waiting for a
      person or a re-run;
    - in_flight: queued or being triaged, which the sweeper recovers if it is lost;
    - done: triaged or resolved.
    """
    tickets = Ticket.objects.all() if tickets is None else tickets
    pending = TriageProposal.objects.filter(
        ticket=OuterRef("pk"), status=TriageProposal.Status.PENDING
    )
    if queue == Queue.REVIEW:
        return tickets.filter(Exists(pending))
    if queue == Queue.MANUAL:
        # A pending safe stop has nothing to approve: its ticket waits for a person.
        reviewable = pending.exclude(outcome=Outcome.SAFE_STOP)
        return tickets.exclude(status__in=IN_FLIGHT_STATUSES + DONE_STATUSES).exclude(
            Exists(reviewable)
        )
    if queue == Queue.IN_FLIGHT:
        return tickets.filter(status__in=IN_FLIGHT_STATUSES)
    if queue == Queue.DONE:
        return tickets.filter(status__in=DONE_STATUSES)
    raise ValueError(f"unknown queue {queue!r}; one of {Queue.values}")


def tickets_with_latest_proposal(tickets: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Each ticket annotated with its newest proposal's outcome and review state (for lists:
    two subqueries in the one list query, not a query per row)."""
    newest = TriageProposal.objects.filter(ticket=OuterRef("pk")).order_by("-created_at", "-id")
    return tickets.annotate(
        latest_outcome=Subquery(newest.values("outcome")[:1]),
        latest_review=Subquery(newest.values("status")[:1]),
    )


def run_with_steps() -> QuerySet[AgentRun]:
    return AgentRun.objects.prefetch_related(
        # The actor (the reviewer of an approval or rollback step) in the same query.
        Prefetch("steps", queryset=TraceStep.objects.select_related("actor").order_by("position"))
    )
