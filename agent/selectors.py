"""Reads on agent data, and the queues a ticket can be in."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextChoices,
    Value,
    When,
)
from django.utils import timezone

from agent.models import (
    AgentRun,
    AgentSettings,
    Outcome,
    ReviewTarget,
    TraceStep,
    TriageProposal,
)
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
        "ticket", "category", "run", "reviewed_by", "claimed_by", "question_sent_by"
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


# --- claims (``agent.claims`` writes them) ---------------------------------------------------


def claim_lapses_at(proposal: TriageProposal) -> datetime | None:
    """When the proposal's claim lapses (None if it has none)."""
    if proposal.claimed_at is None:
        return None
    return proposal.claimed_at + timedelta(minutes=settings.TRIAGE_CLAIM_MINUTES)


def claim_holder(*, proposal: TriageProposal, now: datetime | None = None) -> Any:
    """The reviewer whose claim on the proposal still holds, or None: a claim counts only
    while the proposal is pending and until it lapses."""
    lapses = claim_lapses_at(proposal)
    if proposal.status != TriageProposal.Status.PENDING or lapses is None:
        return None
    if lapses <= (now or timezone.now()):
        return None
    return proposal.claimed_by


def claim_held_by_other(*, proposal: TriageProposal, reviewer: Any) -> bool:
    holder = claim_holder(proposal=proposal)
    return holder is not None and holder.pk != reviewer.pk


def proposals_open_to(
    *, reviewer: Any, proposals: QuerySet[TriageProposal]
) -> QuerySet[TriageProposal]:
    """``proposals`` without those another reviewer's live claim holds: where a reviewer moves
    on to, so that two never open the same next ticket."""
    live_since = timezone.now() - timedelta(minutes=settings.TRIAGE_CLAIM_MINUTES)
    return proposals.exclude(
        Q(claimed_by__isnull=False, claimed_at__gt=live_since) & ~Q(claimed_by=reviewer.pk)
    )


def claim_summary(*, proposal: TriageProposal, now: datetime | None = None) -> str:
    """Who holds the claim and for how long, as staff read it ('' without a live claim):
    ``rita, for 4 min (lapses in 11 min)``."""
    now = now or timezone.now()
    holder, lapses = claim_holder(proposal=proposal, now=now), claim_lapses_at(proposal)
    if holder is None or lapses is None or proposal.claimed_at is None:
        return ""
    held, left = duration_words(now - proposal.claimed_at), duration_words(lapses - now)
    return f"{holder}, for {held} (lapses in {left})"


def duration_words(span: timedelta) -> str:
    """A span as staff read a wait: ``under 1 min``, ``42 min``, ``3 h 5 min``, ``2 d 4 h``."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return "under 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


# --- age and review targets -----------------------------------------------------------------

# Used when a target's row is missing (the data migration makes all four).
DEFAULT_TARGET_MINUTES: dict[str, int] = {
    Urgency.URGENT: 60,
    Urgency.HIGH: 240,
    Urgency.NORMAL: 1440,
    Urgency.LOW: 4320,
}


def review_targets() -> dict[str, timedelta]:
    """Each urgency's review target (how long a ticket may wait from ingest), as admins set
    them in *Review targets*."""
    minutes: dict[str, int] = {**DEFAULT_TARGET_MINUTES}
    minutes.update(ReviewTarget.objects.values_list("urgency", "minutes"))
    return {urgency: timedelta(minutes=value) for urgency, value in minutes.items()}


def review_target_for(proposal: TriageProposal, targets: dict[str, timedelta]) -> timedelta:
    """The proposal's target; a draft without an urgency is held to high's, as the queue ranks
    it (``URGENCY_FIRST``)."""
    return targets.get(proposal.urgency) or targets[Urgency.HIGH]


def proposals_with_target(proposals: QuerySet[TriageProposal]) -> QuerySet[TriageProposal]:
    """Proposals annotated with ``target_minutes``, their urgency's review target (one query
    for the targets, none per row)."""
    targets = review_targets()
    minutes = Case(
        *[
            When(urgency=level, then=Value(int(span.total_seconds() // 60)))
            for level, span in targets.items()
        ],
        default=Value(int(targets[Urgency.HIGH].total_seconds() // 60)),
        output_field=IntegerField(),
    )
    return proposals.annotate(target_minutes=minutes)
