"""What the agent leaves behind: runs with their ordered trace, the proposals staff review, and
the agent settings (kill switch and guards) Triage admins edit."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from tickets.models import Category, Ticket, TicketNote, Urgency

# A run's timeout stays this far below the sweeper's stale threshold: storing the proposal,
# and the worker's own clock, take a little time after the deadline.
STALE_MARGIN_SECONDS = 60


class Outcome(models.TextChoices):
    """The four ways a run may end (DESIGN §3)."""

    PROPOSAL = "proposal", "Proposal"
    CLARIFICATION = "clarification", "Clarification"
    REFUSAL = "refusal", "Refusal"
    SAFE_STOP = "safe_stop", "Safe stop"


class Confidence(models.TextChoices):
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class AgentRun(models.Model):
    """One execution of a workflow: who ran what, with which model, at what cost, and how it
    ended. Its ``steps`` say what the agent saw, why it acted, and what it changed."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        ABANDONED = "abandoned", "Abandoned (worker lost)"

    class Purpose(models.TextChoices):
        TRIAGE = "triage", "Triage"
        EVALUATION = "evaluation", "Evaluation"

    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.CASCADE, related_name="agent_runs"
    )
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.TRIAGE)
    workflow = models.CharField(max_length=64)
    backend = models.CharField(max_length=32)
    model = models.CharField(max_length=64, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    risk_level = models.CharField(max_length=16, blank=True, help_text="Highest risk executed.")
    attempt = models.PositiveSmallIntegerField(default=1, help_text="Task delivery number.")
    model_calls = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(default=0)
    context_chars = models.PositiveIntegerField(
        default=0, help_text="Characters of context (tool results) sent to the model."
    )
    context_left_out = models.JSONField(
        default=list, blank=True, help_text="Context sources left out over the budget."
    )
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("rerun_triage", "Can re-run triage on a ticket")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="running") | ~models.Q(outcome=""),
                name="run_finished_has_outcome",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.workflow}, {self.outcome or self.status})"

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


class TraceStep(models.Model):
    """One step of a run, in order. Payloads are masked before they are stored."""

    class Kind(models.TextChoices):
        INTENT = "intent", "Intent"
        CONTEXT_SOURCE = "context_source", "Context source"
        MODEL_REQUEST = "model_request", "Model request"
        MODEL_RESPONSE = "model_response", "Model response"
        POLICY_DECISION = "policy_decision", "Policy decision"
        TOOL_CALL = "tool_call", "Tool call"
        TOOL_RESULT = "tool_result", "Tool result"
        RETRY = "retry", "Retry"
        ERROR = "error", "Error"
        OUTPUT = "output", "Output"
        APPROVAL = "approval", "Approval"
        REJECTION = "rejection", "Rejection"
        ROLLBACK = "rollback", "Rollback"
        RERUN = "rerun", "Re-run requested"
        CLAIM = "claim", "Claimed"
        QUESTION_SENT = "question_sent", "Clarification sent by staff"

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=500)
    payload = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="trace_step_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_kind_display()}: {self.summary}"


ACTIVE_PROPOSAL_STATUSES = ["pending", "approved", "edited"]


class TriageProposal(models.Model):
    """The agent's maximum side effect: a proposal stored beside the ticket, waiting for staff.
    Nothing on the ticket changes until a reviewer approves it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        EDITED = "edited", "Edited and approved"
        REJECTED = "rejected", "Rejected"
        UNDONE = "undone", "Approval undone"
        # A pending safe stop decided nothing; a re-run of triage replaces it.
        SUPERSEDED = "superseded", "Superseded by a re-run"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="proposals")
    run = models.OneToOneField(AgentRun, on_delete=models.PROTECT, related_name="proposal")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    urgency = models.CharField(max_length=16, choices=Urgency.choices, blank=True)
    confidence = models.CharField(max_length=8, choices=Confidence.choices, blank=True)
    reason = models.TextField(blank=True)
    draft_note = models.TextField(blank=True)
    clarification_question = models.TextField(blank=True)
    missing_information = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text="Why the run stopped (safe stops).")
    injection_suspected = models.BooleanField(default=False)
    requires_human_action = models.BooleanField(default=False)
    degraded_context = models.BooleanField(default=False)
    degraded_reasons = models.JSONField(
        default=list,
        blank=True,
        help_text="Why the context was incomplete (degraded_context): each tool that failed or "
        "source left out.",
    )
    similar_tickets = models.JSONField(
        default=list,
        blank=True,
        help_text="Every similar ticket the agent was shown, most similar first.",
    )
    published_note = models.OneToOneField(
        TicketNote, null=True, blank=True, on_delete=models.SET_NULL, related_name="proposal"
    )
    change_set = models.UUIDField(null=True, blank=True, editable=False, default=None)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)
    # Who is working on the proposal, since when (``agent.claims``): a claim lapses after
    # TRIAGE_CLAIM_MINUTES, and acting on the proposal ends it.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    # A clarification question the reviewer sent through their own helpdesk (the app sends
    # nothing): who said so, and when.
    question_sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    question_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("review_triageproposal", "Can review (approve, edit, reject, undo)")]
        constraints = [
            # Exactly one active proposal per ticket, however often triage runs.
            models.UniqueConstraint(
                fields=["ticket"],
                condition=models.Q(status__in=ACTIVE_PROPOSAL_STATUSES),
                name="proposal_one_active_per_ticket",
            ),
            models.CheckConstraint(
                condition=~models.Q(outcome="proposal")
                | (
                    models.Q(category__isnull=False)
                    & ~models.Q(urgency="")
                    & ~models.Q(confidence="")
                ),
                name="proposal_has_labels",
            ),
            models.CheckConstraint(
                condition=~models.Q(outcome="clarification") | ~models.Q(clarification_question=""),
                name="clarification_has_question",
            ),
            # Only a pending proposal is worked on; a claim always says since when.
            models.CheckConstraint(
                condition=models.Q(status="pending")
                | (models.Q(claimed_by__isnull=True) & models.Q(claimed_at__isnull=True)),
                name="proposal_claimed_only_pending",
            ),
            models.CheckConstraint(
                condition=models.Q(claimed_by__isnull=True) | models.Q(claimed_at__isnull=False),
                name="proposal_claim_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(question_sent_at__isnull=True)
                | models.Q(outcome="clarification"),
                name="proposal_question_sent_is_clarification",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} for {self.ticket.reference}"

    @property
    def prompt_version(self) -> str:
        """The version of the prompt the proposal was made with (recorded on its run)."""
        return self.run.prompt_version

    @property
    def flags(self) -> list[str]:
        names = ["injection_suspected", "requires_human_action", "degraded_context"]
        return [name for name in names if getattr(self, name)]


class AgentSettings(models.Model):
    """The agent's switches, one row, edited by Triage admins in the admin."""

    agent_enabled = models.BooleanField(
        default=True,
        help_text="Kill switch. Off: new tickets go to manual triage and no model is called.",
    )
    max_steps = models.PositiveSmallIntegerField(default=8, help_text="Model turns per run.")
    token_budget = models.PositiveIntegerField(default=60_000, help_text="Tokens per run.")
    timeout_seconds = models.PositiveSmallIntegerField(
        default=120,
        validators=[MinValueValidator(5)],
        help_text="Wall clock per run, in seconds; below the sweeper's stale threshold "
        "(TRIAGE_STALE_AFTER_SECONDS), so that a run still going is never requeued.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "agent settings"
        verbose_name_plural = "agent settings"
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="agent_settings_singleton"),
            models.CheckConstraint(condition=models.Q(max_steps__gte=1), name="max_steps_positive"),
        ]

    def __str__(self) -> str:
        return "Agent settings"

    def clean(self) -> None:
        """A run must end before the sweeper takes its ticket for lost, with a minute to spare
        for the store after it (TRIAGE_STALE_AFTER_SECONDS, 300 by default)."""
        ceiling = settings.TRIAGE_STALE_AFTER_SECONDS - STALE_MARGIN_SECONDS
        if self.timeout_seconds is not None and self.timeout_seconds > ceiling:
            raise ValidationError(
                {
                    "timeout_seconds": f"At most {ceiling} s: the sweeper requeues a ticket "
                    f"after {settings.TRIAGE_STALE_AFTER_SECONDS} s, and a run must have ended "
                    "by then."
                }
            )


class ReviewTarget(models.Model):
    """How long a ticket of one urgency may wait, from ingest, for its review: the queue and the
    review page mark it overdue past this. One row per urgency, edited by Triage admins; a
    draft without an urgency is held to the high target, as the queue ranks it."""

    urgency = models.CharField(max_length=16, choices=Urgency.choices, unique=True)
    minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="Minutes from the ticket's arrival; past them the queue marks it overdue.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["minutes", "urgency"]
        verbose_name = "review target"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(minutes__gte=1), name="review_target_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(urgency__in=Urgency.values), name="review_target_urgency"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_urgency_display()}: {self.minutes} minutes"


class TrainedModel(models.Model):
    """A trained offline model (``agent.workflows.support_triage.model_store``): its
    classifiers, pickled, and what they were trained on. The newest one decides; every run
    names its version in ``AgentRun.model``. Written only by the training service."""

    workflow = models.CharField(max_length=64)
    version = models.CharField(max_length=64, unique=True)
    data_hash = models.CharField(max_length=64, help_text="Digest of the training data.")
    rows = models.JSONField(default=dict, help_text="Training rows by source.")
    metrics = models.JSONField(default=dict, help_text="Measured on a held-out slice.")
    artefact = models.BinaryField()
    size_bytes = models.PositiveIntegerField(default=0)
    training_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.workflow} {self.version}"
