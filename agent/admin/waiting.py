"""What the queue and the review page say about time: how long a ticket has waited since it
came in against its urgency's review target, and who holds a proposal's claim for how long."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from agent.models import ReviewTarget, TriageProposal
from agent.selectors import (
    claim_holder,
    claim_summary,
    duration_words,
    review_target_for,
    review_targets,
)
from tickets.models import Urgency


@dataclass(frozen=True)
class Wait:
    """A ticket's wait since ingest against its target."""

    waited: timedelta
    target: timedelta
    urgency_label: str

    @property
    def overdue(self) -> bool:
        return self.waited > self.target

    @property
    def words(self) -> str:
        return duration_words(self.waited)

    @property
    def target_words(self) -> str:
        return duration_words(self.target)

    @property
    def overdue_words(self) -> str:
        return duration_words(self.waited - self.target)


def proposal_wait(proposal: TriageProposal, target: timedelta | None = None) -> Wait:
    """How long the proposal's ticket has waited since it came in, and its target (the
    annotated ``target_minutes`` where the list has it, else the admins' targets)."""
    if target is None:
        minutes = getattr(proposal, "target_minutes", None)
        target = (
            timedelta(minutes=minutes)
            if minutes is not None
            else review_target_for(proposal, review_targets())
        )
    urgency = Urgency(proposal.urgency).label.lower() if proposal.urgency else "no urgency: high"
    return Wait(timezone.now() - proposal.ticket.created_at, target, urgency)


def waiting_cell(proposal: TriageProposal) -> str:
    """The queue's *waiting* column; an overdue row carries ``queue-overdue`` (its style
    highlights the row)."""
    wait = proposal_wait(proposal)
    title = f"target {wait.target_words} ({wait.urgency_label})"
    if proposal.status == TriageProposal.Status.PENDING and wait.overdue:
        return format_html(
            '<span class="queue-wait" title="{}">{}</span> '
            '<span class="queue-mark queue-overdue">overdue</span>',
            title,
            wait.words,
        )
    return format_html('<span class="queue-wait" title="{}">{}</span>', title, wait.words)


def claim_cell(proposal: TriageProposal, viewer: Any) -> str:
    """The queue's *claimed by* column: the holder (``you`` for the viewer) and for how long."""
    holder = claim_holder(proposal=proposal)
    if holder is None or proposal.claimed_at is None:
        return "-"
    mine = holder.pk == viewer.pk
    return format_html(
        '<span class="queue-claim{}" title="{}">{} · {}</span>',
        " queue-claim-mine" if mine else "",
        claim_summary(proposal=proposal),
        "you" if mine else str(holder),
        duration_words(timezone.now() - proposal.claimed_at),
    )


@admin.register(ReviewTarget)
class ReviewTargetAdmin(admin.ModelAdmin):
    """One row per urgency (made by a data migration): Triage admins change the minutes, on
    the list itself or on a row's page; rows are neither added nor deleted."""

    list_display = ["urgency", "minutes", "as_words", "updated_at"]
    list_editable = ["minutes"]
    list_display_links = ["urgency"]
    fields = ["urgency", "minutes", "updated_at"]
    readonly_fields = ["urgency", "updated_at"]

    @admin.display(description="in words")
    def as_words(self, target: ReviewTarget) -> str:
        return duration_words(timedelta(minutes=target.minutes))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
