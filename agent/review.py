"""Staff review of proposals: approve (with optional edits), reject, undo. One path for the admin
and the API. Every approval is journaled as ChangeRecords and can be undone."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from agent.engine.tools import Risk
from agent.engine.tracing import Tracer
from agent.engine.writes import write_path
from agent.models import Outcome, TriageProposal
from agent.permissions import REVIEW_PERMISSION, user_can_review
from agent.selectors import claim_held_by_other, claim_summary
from agent.signals import proposal_corrected
from tickets.models import Category, ChangeRecord, Ticket, TicketNote


class ReviewConflict(Exception):
    """The proposal or ticket is not in a state that allows this review action (HTTP 409)."""


@dataclass(frozen=True)
class ProposalEdits:
    """What a reviewer changed before approving; None keeps the proposal's value."""

    category: Category | None = None
    urgency: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Expectation:
    """What a review says the agent should have answered: the acceptable outcomes and, for a
    proposal, its category (a slug) and urgency; a blank label is not judged."""

    outcomes: tuple[str, ...]
    category: str = ""
    urgency: str = ""


def rejection_expectation(*, outcome: str, correct: ProposalEdits | None) -> Expectation:
    """What a rejection says was right. Each label the reviewer gave is expected on its own (a
    category alone expects a proposal in that category, whatever its urgency); with neither,
    any outcome but the rejected one and a safe stop."""
    category = correct.category.slug if correct and correct.category else ""
    urgency = (correct.urgency if correct else None) or ""
    if category or urgency:
        return Expectation((Outcome.PROPOSAL.value,), category, urgency)
    others = [o for o in Outcome.values if o not in {outcome, Outcome.SAFE_STOP}]
    return Expectation(tuple(others))


# The ticket fields an approval may write, and that undo restores.
TICKET_FIELDS = ("category_id", "urgency", "status")


@write_path(
    caused_by="review",
    writes="publishes the draft as an internal TicketNote and sets the ticket's category, "
    "urgency and status",
    risk=Risk.INTERNAL_WRITE,
    audit="the change journal (ChangeRecord with before and after, one change set) and an "
    "approval step on the run's trace",
    undo="proposal_undo",
    undo_how="Undo approval reverts the change set: the note is retracted, the labels and "
    "status restored.",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def proposal_approve(
    *, proposal: TriageProposal, reviewer: Any, edits: ProposalEdits | None = None
) -> TriageProposal:
    """Publishes the proposal: an internal note on the ticket and, for a ``proposal`` outcome,
    its category and urgency; journals every write in one change set; traces the approval.
    Edits that change anything mark it ``edited`` and record a correction."""
    proposal, ticket = _lock_pending(proposal, reviewer)
    if proposal.outcome == Outcome.SAFE_STOP:
        raise ReviewConflict(
            "a safe stop has nothing to approve; reject it to take the ticket over"
        )
    edits = edits or ProposalEdits()
    final = _final_values(proposal, edits)
    change_set = uuid.uuid4()
    note = TicketNote.objects.create(
        ticket=ticket, body=final["note"], source=TicketNote.Source.AGENT_PROPOSAL, author=reviewer
    )
    _journal(
        change_set,
        ticket,
        reviewer,
        ChangeRecord.Action.CREATE,
        note,
        "published the agent's note",
        {},
        {"body": note.body},
    )
    before = {field: getattr(ticket, field) for field in TICKET_FIELDS}
    ticket.category_id = final["category_id"]
    ticket.urgency = final["urgency"]
    ticket.status = final["status"]
    ticket.status_changed_at = timezone.now()
    ticket.save()
    after = {field: getattr(ticket, field) for field in TICKET_FIELDS}
    _journal(
        change_set,
        ticket,
        reviewer,
        ChangeRecord.Action.UPDATE,
        ticket,
        "set category, urgency and status",
        before,
        after,
    )
    edited = (final["category_id"], final["urgency"], final["note"]) != (
        proposal.category_id,
        proposal.urgency,
        _default_note(proposal),
    )
    proposal.status = TriageProposal.Status.EDITED if edited else TriageProposal.Status.APPROVED
    proposal.published_note, proposal.change_set = note, change_set
    proposal.reviewed_by, proposal.reviewed_at = reviewer, timezone.now()
    proposal.claimed_by, proposal.claimed_at = None, None  # acting ends the claim
    proposal.save()
    Tracer(proposal.run).record(
        "approval",
        f"{'Edited and approved' if edited else 'Approved'} by {reviewer}; undo reverts change "
        f"set {change_set}",
        actor=reviewer,
        payload={
            "change_set": str(change_set),
            "before": _jsonable(before),
            "after": _jsonable(after),
            "note": note.body,
            "edited": edited,
        },
    )
    if edited:
        proposal_corrected.send(sender=TriageProposal, proposal=proposal, reviewer=reviewer)
    return proposal


@write_path(
    caused_by="review",
    writes="moves the ticket to manual triage and records the proposal's review state",
    risk=Risk.INTERNAL_WRITE,
    audit="the change journal (ChangeRecord with the status before) and a rejection step on "
    "the run's trace",
    undo_how="By hand: the ticket is with a person, who triages it; the journal keeps the "
    "status it had before. Nothing on the ticket's content was changed.",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def proposal_reject(
    *, proposal: TriageProposal, reviewer: Any, reason: str, correct: ProposalEdits | None = None
) -> TriageProposal:
    """Rejects a pending proposal: a human takes the ticket over. The reason (and, optionally,
    the right category and urgency) is recorded as a correction; a safe stop, taken over this
    way, records one only with the right labels."""
    reason = reason.strip()
    if not reason:
        raise ValueError("a reason is required to reject a proposal")
    proposal, ticket = _lock_pending(proposal, reviewer)
    _to_manual_triage(ticket, reviewer, "rejected the agent's proposal; manual triage")
    proposal.status = TriageProposal.Status.REJECTED
    proposal.review_reason = reason
    proposal.reviewed_by, proposal.reviewed_at = reviewer, timezone.now()
    proposal.claimed_by, proposal.claimed_at = None, None  # acting ends the claim
    proposal.save()
    Tracer(proposal.run).record(
        "rejection", f"Rejected by {reviewer}: {reason}", actor=reviewer, payload={"reason": reason}
    )
    labelled = correct is not None and correct.category is not None and bool(correct.urgency)
    # Taking a safe stop over judges nothing the agent said (it said nothing): only the right
    # labels, when the reviewer gives them, are a correction worth learning from.
    if proposal.outcome != Outcome.SAFE_STOP or labelled:
        proposal_corrected.send(
            sender=TriageProposal, proposal=proposal, reviewer=reviewer, correct=correct
        )
    return proposal


@write_path(
    caused_by="review",
    writes="retracts the published note, restores the ticket's category and urgency, and moves "
    "the ticket to manual triage when it would be left awaiting a review that is over",
    risk=Risk.INTERNAL_WRITE,
    audit="the reverted ChangeRecords (reverted_at, reverted_by), the move to manual triage in "
    "the journal, and a rollback step on the run's trace",
    undo_how="It is itself the rollback. Both states stay in the journal; a ticket that needs "
    "the labels again is triaged again.",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def proposal_undo(*, proposal: TriageProposal, reviewer: Any) -> TriageProposal:
    """Reverses an approval's change set: the note is retracted, the ticket's labels and status
    restored. A ticket restored to ``awaiting_review`` then goes to manual triage: its proposal
    is no longer pending, so nothing awaits review, and a person (or a re-run) takes it.
    Undoing twice is harmless. If the ticket changed since the approval, nothing is reverted
    and ``ReviewConflict`` says what changed."""
    _require_reviewer(reviewer)
    proposal = TriageProposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status == TriageProposal.Status.UNDONE:
        return proposal
    if proposal.status not in {TriageProposal.Status.APPROVED, TriageProposal.Status.EDITED}:
        raise ReviewConflict(f"only an approval can be undone; this proposal is {proposal.status}")
    if proposal.change_set is None:  # pragma: no cover - every approval records a change set
        raise ReviewConflict("this approval has no journal to undo")
    ticket = Ticket.objects.select_for_update().get(pk=proposal.ticket_id)
    records = list(ChangeRecord.objects.filter(change_set=proposal.change_set, reverted_at=None))
    for record in records:
        _check_unchanged(record, ticket)
    now = timezone.now()
    for record in records:
        _revert(record, ticket, now)
        record.reverted_at, record.reverted_by = now, reviewer
        record.save(update_fields=["reverted_at", "reverted_by"])
    if ticket.status == Ticket.Status.AWAITING_REVIEW:
        _to_manual_triage(ticket, reviewer, "approval undone; nothing awaits review: manual triage")
    proposal.status = TriageProposal.Status.UNDONE
    proposal.save(update_fields=["status"])
    Tracer(proposal.run).record(
        "rollback",
        f"Approval undone by {reviewer}: {len(records)} changes reverted; the ticket is "
        f"{ticket.get_status_display().lower()}",
        actor=reviewer,
        payload={
            "change_set": str(proposal.change_set),
            "reverted": [r.pk for r in records],
            "status": ticket.status,
        },
    )
    return proposal


def _to_manual_triage(ticket: Ticket, reviewer: Any, summary: str) -> None:
    """A person takes the ticket over: it moves to manual triage, journaled (a move between
    queues, not undone by itself: the journal keeps the status it had)."""
    before = {field: getattr(ticket, field) for field in TICKET_FIELDS}
    ticket.status, ticket.status_changed_at = Ticket.Status.NEEDS_MANUAL_TRIAGE, timezone.now()
    ticket.save(update_fields=["status", "status_changed_at", "updated_at"])
    after = {field: getattr(ticket, field) for field in TICKET_FIELDS}
    _journal(
        uuid.uuid4(),
        ticket,
        reviewer,
        ChangeRecord.Action.UPDATE,
        ticket,
        summary,
        before,
        after,
        reversible=False,
    )


def _require_reviewer(reviewer: Any) -> None:
    if not user_can_review(reviewer):
        raise PermissionDenied("only Support reviewers and Triage admins may review proposals")


def _lock_pending(proposal: TriageProposal, reviewer: Any) -> tuple[TriageProposal, Ticket]:
    """Locks the proposal and its ticket; of two reviewers acting at once, the second waits and
    then finds the proposal no longer pending. A proposal another reviewer has claimed is
    theirs until the claim lapses or is taken over (``agent.claims.proposal_claim``)."""
    _require_reviewer(reviewer)
    locked = pending_proposal_lock(proposal)
    refuse_if_claimed_by_other(locked, reviewer)
    return locked, Ticket.objects.select_for_update().get(pk=locked.ticket_id)


def pending_proposal_lock(proposal: TriageProposal) -> TriageProposal:
    """The proposal, locked for this transaction, with its run and claimant; raises
    ``ReviewConflict`` when it is no longer pending (another reviewer acted first)."""
    locked = (
        TriageProposal.objects.select_for_update(of=("self",))
        .select_related("run", "claimed_by")
        .get(pk=proposal.pk)
    )
    if locked.status != TriageProposal.Status.PENDING:
        raise ReviewConflict(f"this proposal is already {locked.get_status_display().lower()}")
    return locked


def refuse_if_claimed_by_other(proposal: TriageProposal, reviewer: Any) -> None:
    """Raises ``ReviewConflict`` when a live claim on ``proposal`` is another reviewer's."""
    if claim_held_by_other(proposal=proposal, reviewer=reviewer):
        raise ReviewConflict(
            f"it is claimed by {claim_summary(proposal=proposal)}; take it over first"
        )


def _default_note(proposal: TriageProposal) -> str:
    if proposal.outcome == Outcome.CLARIFICATION:
        return f"Ask the customer: {proposal.clarification_question}"
    if proposal.outcome == Outcome.REFUSAL:
        return f"The agent declined: {proposal.reason} A human takes this ticket over."
    return proposal.draft_note


def _final_values(proposal: TriageProposal, edits: ProposalEdits) -> dict[str, Any]:
    category = edits.category or proposal.category
    urgency = edits.urgency or proposal.urgency
    labelled = category is not None and bool(urgency)
    if proposal.outcome == Outcome.PROPOSAL or (edits.category and edits.urgency):
        status = Ticket.Status.TRIAGED if labelled else Ticket.Status.NEEDS_MANUAL_TRIAGE
    else:  # a clarification or refusal: a human still has to act
        status = Ticket.Status.NEEDS_MANUAL_TRIAGE
    return {
        "category_id": category.pk if category else None,
        "urgency": urgency or "",
        "status": status,
        # Browsers send CRLF from a textarea; the API sends LF. Store one form.
        "note": (edits.note or "").replace("\r\n", "\n").strip() or _default_note(proposal),
    }


def _journal(
    change_set: uuid.UUID,
    ticket: Ticket,
    actor: Any,
    action: str,
    target: Any,
    summary: str,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    reversible: bool = True,
) -> None:
    ChangeRecord.objects.create(
        change_set=change_set,
        ticket=ticket,
        actor=actor,
        action=action,
        target=target._meta.label,
        target_id=target.pk,
        summary=summary,
        before=_jsonable(before),
        after=_jsonable(after),
        reversible=reversible,
    )


def _check_unchanged(record: ChangeRecord, ticket: Ticket) -> None:
    if record.target == "tickets.Ticket":
        current = _jsonable({field: getattr(ticket, field) for field in record.after})
        changed = [field for field, value in record.after.items() if current[field] != value]
        if changed:
            raise ReviewConflict(
                f"the ticket changed since the approval ({', '.join(changed)}); undo it by hand"
            )
    elif TicketNote.objects.filter(pk=record.target_id, retracted_at__isnull=False).exists():
        raise ReviewConflict("the published note was already retracted")


def _revert(record: ChangeRecord, ticket: Ticket, now: Any) -> None:
    if record.target == "tickets.TicketNote":
        TicketNote.objects.filter(pk=record.target_id).update(retracted_at=now)
        return
    for field, value in record.before.items():
        setattr(ticket, field, value)
    ticket.status_changed_at = now
    ticket.save()


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if value is None or isinstance(value, int | str) else str(value)
        for key, value in values.items()
    }
