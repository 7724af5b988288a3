"""Tickets and what staff curate around them: categories, reply templates, notes, the journal."""

import uuid
from string import Formatter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone

from triage.validation import validate_text


class Urgency(models.TextChoices):
    """How soon a ticket needs a human. Definitions are shown to the agent and to staff."""

    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


URGENCY_DEFINITIONS: dict[str, str] = {
    Urgency.URGENT: "Production down, data loss, a security breach, or many users blocked now.",
    Urgency.HIGH: "One customer blocked from core work, or money wrongly taken.",
    Urgency.NORMAL: "A real problem with a workaround, or a standard request.",
    Urgency.LOW: "Questions, feedback and nice-to-haves.",
}

# Review queues sort by this: most urgent first.
URGENCY_RANK: dict[str, int] = {
    Urgency.URGENT: 0,
    Urgency.HIGH: 1,
    Urgency.NORMAL: 2,
    Urgency.LOW: 3,
}


class Category(models.Model):
    """A support category, curated by Triage admins; its rules are read by the agent."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    routing_rules = models.TextField(
        blank=True, help_text="Guidance the agent and human triagers read: what belongs here."
    )
    keywords = models.JSONField(
        default=list, blank=True, help_text="Cue words or short phrases typical of this category."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


# What a reply template may name, filled by the draft tool for the ticket under triage.
TEMPLATE_PLACEHOLDERS: dict[str, str] = {
    "ticket_ref": "the ticket's reference, #123",
    "customer_email": "the requester's e-mail address",
    "subject": "the ticket's subject",
    "category_name": "the template's category",
}


def template_problems(body: str) -> list[str]:
    """What keeps ``body`` from filling as a reply template: braces that do not pair up (a
    literal brace is written twice, ``{{`` and ``}}``), placeholders that do not exist, and
    anything but a plain name inside braces (``{subject.upper}``, ``{subject!r}``)."""
    try:
        parsed = [(field, spec, conv) for _, field, spec, conv in Formatter().parse(body)]
    except ValueError as error:
        return [f"The braces do not pair up ({error}). Write a literal brace twice: {{{{ or }}}}."]
    problems = []
    fields = {field for field, _, _ in parsed if field is not None}
    if unknown := sorted(fields - set(TEMPLATE_PLACEHOLDERS)):
        named = ", ".join("{" + name + "}" for name in TEMPLATE_PLACEHOLDERS)
        shown = ", ".join("{" + name + "}" for name in unknown)
        problems.append(f"Unknown placeholder {shown}: use {named}, or write braces twice.")
    if any(spec or conv for field, spec, conv in parsed if field in TEMPLATE_PLACEHOLDERS):
        problems.append("A placeholder takes no format or conversion: {subject}, not {subject!r}.")
    return problems


def validate_template(body: str) -> None:
    if problems := template_problems(body):
        raise ValidationError(problems)


class ReplyTemplate(models.Model):
    """A draft internal note for a category, with ``TEMPLATE_PLACEHOLDERS`` in braces."""

    name = models.CharField(max_length=120)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="templates")
    body = models.TextField(
        validators=[validate_template],
        help_text="Placeholders: "
        + "; ".join(f"{{{name}}} {what}" for name, what in TEMPLATE_PLACEHOLDERS.items())
        + ". A literal brace is written twice: {{ and }}.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["category", "name"], name="template_unique_name"),
            models.CheckConstraint(condition=~models.Q(body=""), name="template_body_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEB = "web", "Web form"
    CHAT = "chat", "Chat"
    API = "api", "API"
    PHONE = "phone", "Phone"


class TicketStatus(models.TextChoices):
    NEW = "new", "New"
    QUEUED = "queued", "Queued for triage"
    TRIAGING = "triaging", "Triaging"
    AWAITING_REVIEW = "awaiting_review", "Awaiting review"
    NEEDS_MANUAL_TRIAGE = "needs_manual_triage", "Needs manual triage"
    TRIAGED = "triaged", "Triaged"
    RESOLVED = "resolved", "Resolved"


class Ticket(models.Model):
    """A customer's support request. The agent never writes here; staff approval does."""

    # Defined at module level so that Meta's constraints can see it; used as Ticket.Status.
    Status = TicketStatus
    SUBJECT_MAX_LENGTH = 300
    BODY_MAX_LENGTH = 50_000

    external_id = models.CharField(  # noqa: DJ001 - NULL = none
        max_length=128, null=True, blank=True, validators=[validate_text]
    )
    subject = models.CharField(max_length=SUBJECT_MAX_LENGTH, validators=[validate_text])
    body = models.TextField(blank=True, validators=[validate_text])
    requester_email = models.EmailField()
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.API)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.NEW, db_index=True
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )
    urgency = models.CharField(max_length=16, choices=Urgency.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=models.Q(external_id__isnull=False),
                name="ticket_unique_external_id",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    GreaterThanOrEqual(Length("subject"), 1),
                    LessThanOrEqual(Length("subject"), 300),
                ),
                name="ticket_subject_length",
            ),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("body"), 50_000), name="ticket_body_length"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=TicketStatus.values),
                name="ticket_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(urgency__in=["", *Urgency.values]),
                name="ticket_urgency_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=Channel.values),
                name="ticket_channel_valid",
            ),
            # A triaged or resolved ticket carries its labels.
            models.CheckConstraint(
                condition=~models.Q(status__in=[TicketStatus.TRIAGED, TicketStatus.RESOLVED])
                | (models.Q(category__isnull=False) & ~models.Q(urgency="")),
                name="ticket_triaged_has_labels",
            ),
        ]
        indexes = [models.Index(fields=["status", "status_changed_at"], name="ticket_status_age")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def reference(self) -> str:
        """How staff and notes refer to the ticket."""
        return f"#{self.pk}"


class TicketNote(models.Model):
    """An internal note on a ticket, never shown to the customer.

    A note published from an agent proposal is linked from that proposal
    (``agent.TriageProposal.published_note``); undoing the approval retracts it.
    """

    class Source(models.TextChoices):
        STAFF = "staff", "Written by staff"
        AGENT_PROPOSAL = "agent_proposal", "Agent draft approved by staff"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    body = models.TextField(validators=[validate_text])
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.STAFF)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    retracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(body=""), name="note_body_not_empty"),
        ]

    def __str__(self) -> str:
        return f"Note on {self.ticket.reference}"


class ChangeRecord(models.Model):
    """One internal write, journaled so that it can be explained and undone.

    Records written together (one approval) share a ``change_set``; undo reverses a whole set.
    """

    class Action(models.TextChoices):
        CREATE = "create", "Create"
        UPDATE = "update", "Update"

    change_set = models.UUIDField(default=uuid.uuid4, db_index=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="changes")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    target = models.CharField(max_length=64, help_text="Model label of the row written.")
    target_id = models.BigIntegerField()
    summary = models.CharField(max_length=300)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reversible = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reverted_at__isnull=True) | models.Q(reversible=True),
                name="change_only_reversible_reverted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.target}#{self.target_id}: {self.summary}"
