"""Who may see and review proposals: the one place this is decided, for the admin and the API
alike."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

REVIEW_PERMISSION = "agent.review_triageproposal"
VIEW_PROPOSALS_PERMISSION = "agent.view_triageproposal"
RERUN_PERMISSION = "agent.rerun_triage"
VIEW_RUNS_PERMISSION = "agent.view_agentrun"


def user_can_review(user: Any) -> bool:
    """Support reviewers and Triage admins (through their group's permission), and superusers."""
    return bool(
        user and user.is_authenticated and user.is_active and user.has_perm(REVIEW_PERMISSION)
    )


def user_can_rerun(user: Any) -> bool:
    """Support reviewers and Triage admins (through their group's permission), and superusers:
    a re-run calls the model again, so it is a permission of its own."""
    return bool(
        user and user.is_authenticated and user.is_active and user.has_perm(RERUN_PERMISSION)
    )


def user_can_see_proposals(user: Any) -> bool:
    """Proposals hold drafts, the agent's reasoning, reviewers and excerpts of other customers'
    similar tickets: for staff who may view them (Support reviewers, Triage admins), not for
    integrations that only post tickets (Ticket intake). Every representation that embeds a
    proposal asks here."""
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and user.has_perm(VIEW_PROPOSALS_PERMISSION)
    )


def user_can_see_traces(user: Any) -> bool:
    """A run's trace holds everything the agent read (the ticket, other customers' similar
    tickets) and wrote (its draft): for staff who may view runs (Support reviewers, Triage
    admins), not for Ticket intake, who may read tickets. Every page that embeds a trace asks
    here."""
    return bool(
        user and user.is_authenticated and user.is_active and user.has_perm(VIEW_RUNS_PERMISSION)
    )


class CanReview(BasePermission):
    message = "You need the review permission (Support reviewers or Triage admins)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_can_review(request.user)
