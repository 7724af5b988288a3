"""API representations of tickets."""

from rest_framework import serializers

from tickets.models import Category, Channel, Ticket, Urgency
from triage.validation import KnownFieldsSerializer, StrictCharField


class TicketIngestSerializer(KnownFieldsSerializer):
    """What a client may send to create a ticket. Validation only; ``ticket_ingest`` stores."""

    subject = StrictCharField(min_length=1, max_length=Ticket.SUBJECT_MAX_LENGTH)
    body = StrictCharField(
        max_length=Ticket.BODY_MAX_LENGTH, allow_blank=True, trim_whitespace=False, default=""
    )
    requester_email = serializers.EmailField()
    external_id = StrictCharField(
        max_length=128, required=False, allow_null=True, allow_blank=True, default=None
    )
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)


class TicketSerializer(serializers.ModelSerializer):
    # Nullable and blank where the data is (an untriaged ticket has neither), so that the
    # OpenAPI schema says what the API returns.
    category: serializers.SlugRelatedField[Category] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    urgency = serializers.ChoiceField(choices=Urgency.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Ticket
        fields = [
            "id",
            "external_id",
            "subject",
            "body",
            "requester_email",
            "channel",
            "status",
            "category",
            "urgency",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
