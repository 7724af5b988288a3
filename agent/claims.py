"""Claims: a reviewer says *I am working on this proposal*, so that two reviewers never work
the same ticket unknowingly. A claim is a note on the pending proposal (who, since when); it
lapses after ``TRIAGE_CLAIM_MINUTES``, ends when the holder approves, rejects or releases it,
and another reviewer may act only after taking it over, which is traced and logged."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from agent.engine.tools import Risk
from agent.engine.tracing import Tracer
from agent.engine.writes import write_path
from agent.models import TriageProposal
from agent.permissions import REVIEW_PERMISSION, user_can_review
from agent.review import ReviewConflict, pending_proposal_lock
from agent.selectors import claim_holder, claim_summary

logger = logging.getLogger(__name__)


class ClaimHeld(ReviewConflict):
    """Another reviewer's claim holds: take it over explicitly, or leave the proposal."""


@write_path(
    caused_by="review",
    writes="records who works on a pending proposal and since when (nothing on the ticket)",
    risk=Risk.INTERNAL_WRITE,
    audit="a claim step on the run's trace whenever the holder changes (a take-over names "
    "whose claim it took), and the agent.claims log",
    undo_how="Release the claim (proposal_release); it also lapses after "
    "TRIAGE_CLAIM_MINUTES and ends when the proposal is approved or rejected.",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def proposal_claim(
    *, proposal: TriageProposal, reviewer: Any, take_over: bool = False
) -> TriageProposal:
    """Claims a pending proposal for ``reviewer`` for ``TRIAGE_CLAIM_MINUTES`` (claiming one's
    own again renews it). Another reviewer's live claim raises ``ClaimHeld`` unless
    ``take_over``; then nothing is written."""
    locked = _lock_pending(proposal, reviewer)
    now = timezone.now()
    holder = claim_holder(proposal=locked, now=now)
    taken_from = holder if holder is not None and holder.pk != reviewer.pk else None
    if taken_from is not None and not take_over:
        raise ClaimHeld(f"it is claimed by {claim_summary(proposal=locked, now=now)}")
    held_before = claim_summary(proposal=locked, now=now)
    locked.claimed_by, locked.claimed_at = reviewer, now
    locked.save(update_fields=["claimed_by", "claimed_at"])
    if holder is None or taken_from is not None:  # a renewal changes no holder: not traced
        _trace(locked, reviewer, taken_from, held_before)
    return locked


@write_path(
    caused_by="review",
    writes="ends the reviewer's own claim on a pending proposal",
    risk=Risk.INTERNAL_WRITE,
    audit="a claim step on the run's trace",
    undo_how="Claim the proposal again (proposal_claim).",
    permission=REVIEW_PERMISSION,
)
@transaction.atomic
def proposal_release(*, proposal: TriageProposal, reviewer: Any) -> TriageProposal:
    """Ends ``reviewer``'s own claim; releasing a proposal nobody holds is harmless. Another
    reviewer's claim raises ``ClaimHeld``."""
    locked = _lock_pending(proposal, reviewer)
    holder = claim_holder(proposal=locked)
    if holder is not None and holder.pk != reviewer.pk:
        raise ClaimHeld(f"it is claimed by {claim_summary(proposal=locked)}, not by you")
    if locked.claimed_at is None:
        return locked
    locked.claimed_by, locked.claimed_at = None, None
    locked.save(update_fields=["claimed_by", "claimed_at"])
    Tracer(locked.run).record(
        "claim", f"Claim released by {reviewer}", actor=reviewer, payload={"released": True}
    )
    logger.info("proposal %s: claim released by %s", locked.pk, reviewer)
    return locked


def proposals_claim(
    *, proposals: list[TriageProposal], reviewer: Any
) -> tuple[list[TriageProposal], list[tuple[TriageProposal, str]]]:
    """Claims each proposal that is pending and not another reviewer's (the queue's bulk
    action); returns the claimed ones and, for the others, why each was left. One claim each,
    so that one refusal does not undo the rest."""
    claimed, left = [], []
    for proposal in proposals:
        try:
            claimed.append(proposal_claim(proposal=proposal, reviewer=reviewer))
        except ReviewConflict as conflict:
            left.append((proposal, str(conflict)))
    return claimed, left


def _lock_pending(proposal: TriageProposal, reviewer: Any) -> TriageProposal:
    if not user_can_review(reviewer):
        raise PermissionDenied("only Support reviewers and Triage admins may claim proposals")
    return pending_proposal_lock(proposal)


def _trace(proposal: TriageProposal, reviewer: Any, taken_from: Any, held_before: str) -> None:
    if taken_from is None:
        summary = f"Claimed by {reviewer}"
    else:
        summary = f"Claim taken over by {reviewer} from {held_before}"
    Tracer(proposal.run).record(
        "claim",
        summary,
        actor=reviewer,
        payload={
            "claimed_by": str(reviewer),
            "taken_over_from": str(taken_from) if taken_from is not None else None,
        },
    )
    if taken_from is None:
        logger.info("proposal %s: claimed by %s", proposal.pk, reviewer)
    else:
        logger.warning(
            "proposal %s: claim taken over by %s from %s", proposal.pk, reviewer, taken_from
        )
