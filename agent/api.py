"""Agent endpoints: tickets with their latest proposal, the proposal queue, runs with traces.

The ticket endpoints are defined in ``tickets.api``; this app extends their representation with
the latest proposal (``tickets`` may not know about proposals: dependencies point one way).
"""

from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from agent.models import AgentRun, TriageProposal
from agent.permissions import CanReview
from agent.review import (
    ProposalEdits,
    ReviewConflict,
    proposal_approve,
    proposal_reject,
    proposal_undo,
)
from agent.selectors import proposal_list, run_with_steps
from agent.serializers import (
    ApproveSerializer,
    ProposalSerializer,
    RejectSerializer,
    RunSerializer,
    TicketWithProposalSerializer,
)
from tickets.api import DETAIL_RESPONSES, ERROR_RESPONSES, LIST_RESPONSES, TicketViewSet
from tickets.models import Ticket
from tickets.serializers import TicketIngestSerializer

REVIEW_ERRORS = {
    **ERROR_RESPONSES,
    404: OpenApiResponse(description="No such proposal."),
    409: OpenApiResponse(
        description="Conflict: not pending, the ticket changed since, or another reviewer has "
        "claimed the proposal (its claimed_by, until claim_lapses_at)."
    ),
}


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The proposal is not in a state that allows this."
    default_code = "conflict"


@extend_schema_view(
    list=extend_schema(responses={200: TicketWithProposalSerializer, **LIST_RESPONSES}),
    retrieve=extend_schema(responses={200: TicketWithProposalSerializer, **DETAIL_RESPONSES}),
    create=extend_schema(
        request=TicketIngestSerializer,
        responses={
            201: TicketWithProposalSerializer,
            200: OpenApiResponse(
                TicketWithProposalSerializer,
                description="Known external_id, same content: the existing one.",
            ),
            409: OpenApiResponse(
                description="Known external_id with different content: nothing changed."
            ),
            **ERROR_RESPONSES,
        },
    ),
)
class TicketWithProposalViewSet(TicketViewSet):
    """Tickets, each with its latest proposal for readers who may see proposals. Creating one
    is idempotent on ``external_id``."""

    serializer_class = TicketWithProposalSerializer

    def get_queryset(self) -> QuerySet[Ticket]:
        newest_first = TriageProposal.objects.select_related(
            "category", "reviewed_by", "run", "claimed_by", "question_sent_by"
        ).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset()
            .prefetch_related(Prefetch("proposals", newest_first, to_attr="newest_proposals"))
        )


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=TriageProposal.Status.values,
                description="Only proposals in this review state, e.g. pending (the queue).",
            )
        ],
        responses={200: ProposalSerializer(many=True), **LIST_RESPONSES},
    ),
    retrieve=extend_schema(responses={200: ProposalSerializer, **DETAIL_RESPONSES}),
)
class ProposalViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The agent's proposals; ``?status=pending`` is the review queue. Review actions need the
    review permission; conflicts (not pending, changed since, approved by someone else) are 409."""

    serializer_class = ProposalSerializer
    queryset = proposal_list()

    def get_permissions(self) -> Sequence[Any]:
        if self.action in {"approve", "reject", "undo"}:
            return [IsAuthenticated(), CanReview()]
        return super().get_permissions()

    @extend_schema(request=ApproveSerializer, responses={200: ProposalSerializer, **REVIEW_ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        edits = ApproveSerializer(data=request.data)
        edits.is_valid(raise_exception=True)
        data = edits.validated_data
        return self._review(
            proposal_approve,
            reviewer=request.user,
            edits=ProposalEdits(data.get("category"), data.get("urgency"), data.get("note")),
        )

    @extend_schema(request=RejectSerializer, responses={200: ProposalSerializer, **REVIEW_ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        payload = RejectSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        return self._review(
            proposal_reject,
            reviewer=request.user,
            reason=data["reason"],
            correct=ProposalEdits(data.get("category"), data.get("urgency")),
        )

    @extend_schema(request=None, responses={200: ProposalSerializer, **REVIEW_ERRORS})
    @action(detail=True, methods=["post"])
    def undo(self, request: Request, pk: str | None = None) -> Response:
        return self._review(proposal_undo, reviewer=request.user)

    def _review(self, service: Callable[..., TriageProposal], **arguments: Any) -> Response:
        proposal = self.get_object()
        try:
            proposal = service(proposal=proposal, **arguments)
        except ReviewConflict as conflict:
            raise Conflict(str(conflict)) from conflict
        return Response(ProposalSerializer(self.get_queryset().get(pk=proposal.pk)).data)

    def get_queryset(self) -> QuerySet[TriageProposal]:
        status = self.request.query_params.get("status")
        if status is not None and status not in TriageProposal.Status.values:
            raise ValidationError({"status": [f"must be one of {TriageProposal.Status.values}"]})
        return proposal_list(status=status)


@extend_schema_view(retrieve=extend_schema(responses={200: RunSerializer, **DETAIL_RESPONSES}))
class RunViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """An agent run with its ordered, masked trace."""

    serializer_class = RunSerializer
    queryset = run_with_steps()

    def get_queryset(self) -> QuerySet[AgentRun]:
        return run_with_steps()
