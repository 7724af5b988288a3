"""Re-running triage: a person sends a ticket that left the agent's hands (an approval undone,
a proposal rejected, a safe stop, a ticket that came in while the agent was switched off) back
to the agent. The run itself is the ordinary one: queued through ``triage_enqueue``, claimed,
traced, stored as a pending proposal for review."""

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from agent.engine.tools import Risk
from agent.engine.tracing import Tracer
from agent.engine.writes import write_path
from agent.models import ACTIVE_PROPOSAL_STATUSES, AgentRun, Outcome, TriageProposal
from agent.permissions import RERUN_PERMISSION, user_can_rerun
from agent.selectors import (
    IN_FLIGHT_STATUSES,
    agent_settings_get,
    claim_held_by_other,
    claim_summary,
)
from agent.services import triage_enqueue
from tickets.models import ChangeRecord, Ticket

KILL_SWITCH_MESSAGE = (
    "The agent is switched off (kill switch), so nothing was queued. A Triage admin turns it "
    "back on under Triage agent → Agent settings; until then, triage the ticket by hand."
)


class RerunRefused(Exception):
    """The ticket cannot be triaged again now; the message says why and what to do instead."""


class AgentSwitchedOff(RerunRefused):
    """The kill switch is off: no ticket is sent to the agent."""


def rerun_blocker(*, ticket: Ticket, active: TriageProposal | None) -> str:
    """Why this ticket cannot be sent back to the agent ('' if it can). Only a ticket a person
    holds may be: not one the agent still has, not a done one, and not one whose proposal a
    reviewer should decide on first. A pending safe stop decided nothing, so a re-run may
    replace it."""
    if ticket.status in IN_FLIGHT_STATUSES:
        return f"{ticket.reference} is already with the agent ({ticket.get_status_display()})"
    if ticket.status == Ticket.Status.RESOLVED:
        return f"{ticket.reference} is resolved"
    if ticket.status == Ticket.Status.TRIAGED:
        return f"{ticket.reference} is triaged: undo its approval to triage it again"
    pending = active is not None and active.status == TriageProposal.Status.PENDING
    if active is None or (pending and active.outcome == Outcome.SAFE_STOP):
        return ""
    if pending:
        return f"{ticket.reference} has a draft awaiting review: approve or reject it"
    return f"{ticket.reference}'s approval stands: undo it first to triage the ticket again"


@write_path(
    caused_by="review",
    writes="queues the ticket for triage again (its status only) and marks a pending safe "
    "stop superseded; the new run stores a pending proposal like any other",
    risk=Risk.INTERNAL_WRITE,
    audit="the change journal (the status before, who asked) and a rerun step, with who asked, "
    "on the ticket's last run",
    undo_how="Nothing on the ticket's content changes: the new proposal is reviewed, and "
    "rejected if it is wrong; the journal keeps the status the ticket had.",
    permission=RERUN_PERMISSION,
)
@transaction.atomic
def triage_rerun(*, ticket_id: int, requested_by: Any) -> Ticket:
    """Sends a ticket a person holds back to the agent: supersedes a pending safe stop, moves
    the ticket to ``queued``, journals and traces who asked, and enqueues it after commit.
    Raises ``PermissionDenied`` without the re-run permission, ``AgentSwitchedOff`` while the
    kill switch is off and ``RerunRefused`` for a ticket that is not the person's to send (a
    safe stop another reviewer has claimed included); in each case nothing is written or
    queued."""
    if not user_can_rerun(requested_by):
        raise PermissionDenied("only Support reviewers and Triage admins may re-run triage")
    if not agent_settings_get().agent_enabled:
        raise AgentSwitchedOff(KILL_SWITCH_MESSAGE)
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    active = (
        TriageProposal.objects.select_for_update()
        .filter(ticket=ticket, status__in=ACTIVE_PROPOSAL_STATUSES)
        .first()
    )
    if blocker := rerun_blocker(ticket=ticket, active=active):
        raise RerunRefused(blocker)
    if active is not None and claim_held_by_other(proposal=active, reviewer=requested_by):
        raise RerunRefused(
            f"{ticket.reference} is claimed by {claim_summary(proposal=active)}: take its "
            "safe stop over first"
        )
    now = timezone.now()
    if active is not None:  # a pending safe stop: the re-run replaces it
        active.status, active.reviewed_by, active.reviewed_at = (
            TriageProposal.Status.SUPERSEDED,
            requested_by,
            now,
        )
        active.claimed_by, active.claimed_at = None, None  # nothing is left to work on
        active.save(
            update_fields=["status", "reviewed_by", "reviewed_at", "claimed_by", "claimed_at"]
        )
    before = ticket.status
    ticket.status, ticket.status_changed_at = Ticket.Status.QUEUED, now
    ticket.save(update_fields=["status", "status_changed_at", "updated_at"])
    ChangeRecord.objects.create(
        change_set=uuid.uuid4(),
        ticket=ticket,
        actor=requested_by,
        action=ChangeRecord.Action.UPDATE,
        target=Ticket._meta.label,
        target_id=ticket.pk,
        summary=f"re-run of triage requested by {requested_by}",
        before={"status": before},
        after={"status": ticket.status},
        reversible=False,
    )
    _trace(ticket, requested_by, before, active)
    triage_enqueue(ticket_id=ticket.pk)
    return ticket


def _trace(
    ticket: Ticket, requested_by: Any, before: str, superseded: TriageProposal | None
) -> None:
    """The request on the ticket's last run, the one whose decision it sets aside."""
    last = (
        AgentRun.objects.filter(ticket=ticket, purpose=AgentRun.Purpose.TRIAGE)
        .order_by("-started_at", "-id")
        .first()
    )
    if last is None:  # never triaged: the journal alone records the request
        return
    Tracer(last).record(
        "rerun",
        f"Triage re-run requested by {requested_by}; the ticket was {before}",
        actor=requested_by,
        payload={
            "requested_by": str(requested_by),
            "status_before": before,
            "superseded_proposal": superseded.pk if superseded else None,
        },
    )
