"""Who may review proposals: the one place this is decided, for the admin and the API alike."""

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

REVIEW_PERMISSION = "agent.review_triageproposal"


def user_can_review(user: Any) -> bool:
    """Support reviewers and Triage admins (through their group's permission), and superusers."""
    return bool(
        user and user.is_authenticated and user.is_active and user.has_perm(REVIEW_PERMISSION)
    )


class CanReview(BasePermission):
    message = "You need the review permission (Support reviewers or Triage admins)."

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_can_review(request.user)
