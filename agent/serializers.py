"""API representations of proposals, runs and their traces."""

from typing import Any

from django.db import DatabaseError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agent.models import AgentRun, Confidence, TraceStep, TriageProposal
from agent.permissions import user_can_see_proposals
from agent.selectors import claim_holder, claim_lapses_at
from tickets.models import Category, Ticket, Urgency
from tickets.serializers import TicketSerializer
from triage.validation import KnownFieldsSerializer, StrictCharField


class ProposalSerializer(serializers.ModelSerializer):
    # Nullable and blank where the data is (a clarification has no category, urgency or
    # confidence; a pending proposal no reviewer), so that the schema says what is returned.
    category: serializers.SlugRelatedField[Category] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    urgency = serializers.ChoiceField(choices=Urgency.choices, allow_blank=True, read_only=True)
    confidence = serializers.ChoiceField(
        choices=Confidence.choices, allow_blank=True, read_only=True
    )
    flags = serializers.ListField(child=serializers.CharField(), read_only=True)
    degraded_reasons = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Why the context was incomplete (the degraded_context flag).",
    )
    prompt_version = serializers.CharField(read_only=True)
    reviewed_by: serializers.StringRelatedField[Any] = serializers.StringRelatedField(
        allow_null=True
    )
    claimed_by = serializers.SerializerMethodField(
        help_text="The reviewer whose claim on this pending proposal holds (null when none "
        "does, or it lapsed); only they approve or reject it until it lapses."
    )
    claim_lapses_at = serializers.SerializerMethodField(
        help_text="When that claim lapses (null without one)."
    )
    question_sent_by: serializers.StringRelatedField[Any] = serializers.StringRelatedField(
        allow_null=True,
        help_text="Who recorded sending the clarification question through their helpdesk.",
    )

    class Meta:
        model = TriageProposal
        fields = [
            "id",
            "ticket",
            "run",
            "prompt_version",
            "outcome",
            "status",
            "category",
            "urgency",
            "confidence",
            "reason",
            "draft_note",
            "clarification_question",
            "missing_information",
            "error",
            "flags",
            "degraded_reasons",
            "similar_tickets",
            "reviewed_by",
            "reviewed_at",
            "review_reason",
            "claimed_by",
            "claim_lapses_at",
            "question_sent_by",
            "question_sent_at",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_claimed_by(self, proposal: TriageProposal) -> str | None:
        holder = claim_holder(proposal=proposal)
        return None if holder is None else str(holder)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_claim_lapses_at(self, proposal: TriageProposal) -> str | None:
        if claim_holder(proposal=proposal) is None:
            return None
        lapses = claim_lapses_at(proposal)
        return serializers.DateTimeField().to_representation(lapses) if lapses else None


class TicketWithProposalSerializer(TicketSerializer):
    latest_proposal = serializers.SerializerMethodField(
        help_text="The ticket's newest proposal; null when there is none, or when the reader may "
        "not see proposals (the Ticket intake role)."
    )

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "latest_proposal"]
        read_only_fields = fields

    @extend_schema_field(ProposalSerializer(allow_null=True))
    def get_latest_proposal(self, ticket: Ticket) -> dict | None:
        request = self.context.get("request")
        if not user_can_see_proposals(getattr(request, "user", None)):
            return None
        newest = getattr(ticket, "newest_proposals", None)  # prefetched by the list view
        if newest is None:
            newest = list(TriageProposal.objects.filter(ticket=ticket).order_by("-created_at")[:1])
        return ProposalSerializer(newest[0]).data if newest else None


class TraceStepSerializer(serializers.ModelSerializer):
    actor: serializers.StringRelatedField[Any] = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = TraceStep
        fields = [
            "position",
            "kind",
            "name",
            "summary",
            "payload",
            "duration_ms",
            "actor",
            "created_at",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    steps = TraceStepSerializer(many=True, read_only=True)

    class Meta:
        model = AgentRun
        fields = [
            "id",
            "ticket",
            "purpose",
            "workflow",
            "backend",
            "model",
            "prompt_version",
            "status",
            "outcome",
            "risk_level",
            "attempt",
            "model_calls",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "latency_ms",
            "context_chars",
            "context_left_out",
            "error",
            "started_at",
            "finished_at",
            "steps",
        ]
        read_only_fields = fields


class CategoryField(serializers.SlugRelatedField[Category]):
    """An active category, by slug."""

    def __init__(self, **kwargs: Any) -> None:
        active = Category.objects.filter(is_active=True)
        super().__init__(slug_field="slug", queryset=active, **kwargs)


class CategoryFieldSchema(OpenApiSerializerFieldExtension):
    """In the OpenAPI schema, the active categories' slugs as the field's enum, read when the
    schema is served: admins curate categories, and a client sees the ones it may send."""

    target_class = CategoryField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        try:
            slugs = sorted(Category.objects.filter(is_active=True).values_list("slug", flat=True))
        except DatabaseError:  # no tables yet: ``check --deploy`` builds the schema before migrate
            slugs = []
        return {"type": "string", **({"enum": slugs} if slugs else {})}


class _LabelsSerializer(KnownFieldsSerializer):
    category = CategoryField(required=False)
    urgency = serializers.ChoiceField(choices=Urgency.choices, required=False)


class ApproveSerializer(_LabelsSerializer):
    """Optional edits; any change is recorded as a correction."""

    note = StrictCharField(max_length=5000, required=False, allow_blank=False)


class RejectSerializer(_LabelsSerializer):
    """A reason is required; the right category and urgency are optional."""

    reason = StrictCharField(max_length=2000, allow_blank=False)
