"""The clarification question, ready to use: the reviewer sends it through their own helpdesk
(the app sends nothing to customers) and records here that it was sent."""

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from agent.engine.tools import Risk
from agent.engine.tracing import Tracer
from agent.engine.writes import write_path
from agent.models import Outcome, TriageProposal
from agent.permissions import REVIEW_PERMISSION, user_can_review
from agent.review import ReviewConflict, refuse_if_claimed_by_other
from tickets.models import ChangeRecord, Ticket, TicketNote

# A question may be sent while the proposal waits for review or after it was approved; not
# after a rejection (the reviewer said the question was wrong) or an undo.
SENDABLE_STATUSES = (
    TriageProposal.Status.PENDING,
    TriageProposal.Status.APPROVED,
    TriageProposal.Status.EDITED,
)


@write_path(
    caused_by="review",
    writes="adds an internal note on the ticket saying the reviewer sent the clarification "
    "question through their own helpdesk, and marks the proposal's question sent",
    risk=Risk.INTERNAL_WRITE,
    audit="the change journal (the note created, by whom) and a question_sent step on the "
    "run's trace",
    undo_how="By hand: the message went out through the helpdesk, which the app cannot recall; "
    "the note is internal and a staff member may retract it.",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def clarification_mark_sent(*, proposal: TriageProposal, reviewer: Any) -> TriageProposal:
    """Records that ``reviewer`` sent the proposal's clarification question to the customer
    themselves: an internal note on the ticket, the journal and the trace. Raises
    ``ReviewConflict`` (nothing written) for a proposal that is no clarification, already
    marked, rejected or undone, or claimed by another reviewer."""
    if not user_can_review(reviewer):
        raise PermissionDenied("only Support reviewers and Triage admins may record this")
    locked = (
        TriageProposal.objects.select_for_update(of=("self",))
        .select_related("run", "claimed_by", "question_sent_by")
        .get(pk=proposal.pk)
    )
    _refuse_unsendable(locked, reviewer)
    ticket = Ticket.objects.get(pk=locked.ticket_id)
    now = timezone.now()
    note = TicketNote.objects.create(
        ticket=ticket,
        author=reviewer,
        body=f"Clarification question sent to the customer by {reviewer} through our "
        f"helpdesk: {locked.clarification_question}",
    )
    ChangeRecord.objects.create(
        change_set=uuid.uuid4(),
        ticket=ticket,
        actor=reviewer,
        action=ChangeRecord.Action.CREATE,
        target=TicketNote._meta.label,
        target_id=note.pk,
        summary="recorded that the clarification question was sent through the helpdesk",
        after={"body": note.body},
        reversible=False,
    )
    locked.question_sent_by, locked.question_sent_at = reviewer, now
    locked.save(update_fields=["question_sent_by", "question_sent_at"])
    Tracer(locked.run).record(
        "question_sent",
        f"Clarification question sent to the customer by {reviewer} through the helpdesk "
        "(the app sent nothing)",
        actor=reviewer,
        payload={"question": locked.clarification_question, "note": note.pk},
    )
    return locked


def _refuse_unsendable(proposal: TriageProposal, reviewer: Any) -> None:
    if proposal.outcome != Outcome.CLARIFICATION:
        raise ReviewConflict("only a clarification has a question to send")
    if proposal.question_sent_at is not None:
        raise ReviewConflict(
            f"{proposal.question_sent_by or 'someone'} already marked the question sent at "
            f"{timezone.localtime(proposal.question_sent_at):%Y-%m-%d %H:%M}"
        )
    if proposal.status not in SENDABLE_STATUSES:
        raise ReviewConflict(
            f"this proposal is {proposal.get_status_display().lower()}: its question is not "
            "the one to send"
        )
    refuse_if_claimed_by_other(proposal, reviewer)
