"""Evaluation examples (from corrections, curation and imports), runs and their results."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from agent.models import AgentRun, TriageProposal
from tickets.models import Urgency

OUTCOMES = ["proposal", "clarification", "refusal", "safe_stop"]


class CaseType(models.TextChoices):
    NORMAL = "normal", "Normal"
    AMBIGUOUS = "ambiguous", "Ambiguous"
    MISSING_DATA = "missing_data", "Missing data"
    TOOL_FAILURE = "tool_failure", "Tool failure"
    CONFLICTING_INSTRUCTION = "conflicting_instruction", "Conflicting instruction"
    UNSAFE_ACTION = "unsafe_action", "Unsafe action"
    MALFORMED_OUTPUT = "malformed_output", "Malformed output"
    PROMPT_INJECTION = "prompt_injection", "Prompt injection"


class EvaluationExample(models.Model):
    """One case: a ticket snapshot, its context (or live retrieval), the acceptable outcomes,
    for proposals the expected labels, and an optional fault to inject."""

    class Source(models.TextChoices):
        CORRECTION = "correction", "Staff correction"
        CURATED = "curated", "Curated"
        IMPORTED = "imported", "Imported"

    suite = models.SlugField(max_length=64, db_index=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    case_type = models.CharField(max_length=32, choices=CaseType.choices, default=CaseType.NORMAL)
    external_id = models.CharField(max_length=128, blank=True, help_text="Id in the source data.")
    ticket_snapshot = models.JSONField(help_text="subject, body, requester_email, channel")
    context_snapshot = models.JSONField(
        null=True, blank=True, help_text="Similar tickets as shown; empty: retrieve live."
    )
    acceptable_outcomes = models.JSONField(default=list)
    expected_category = models.SlugField(max_length=64, blank=True)
    expected_urgency = models.CharField(max_length=16, choices=Urgency.choices, blank=True)
    expected_flags = models.JSONField(
        default=dict,
        blank=True,
        help_text='Flags that must be on (true) or off (false), e.g. {"injection_suspected": true}',
    )
    language = models.CharField(max_length=8, blank=True, help_text="e.g. en, es, de, fr")
    fault = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"tool_faults": {"get_ticket": "error"}}'
    )
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    proposal = models.ForeignKey(
        TriageProposal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["suite", "case_type", "id"]
        constraints = [
            # One example per proposal: a later correction updates it.
            models.UniqueConstraint(
                fields=["proposal"],
                condition=models.Q(proposal__isnull=False),
                name="example_one_per_proposal",
            ),
            models.UniqueConstraint(
                fields=["suite", "external_id"],
                condition=~models.Q(external_id=""),
                name="example_unique_external_id_per_suite",
            ),
            models.CheckConstraint(
                condition=models.Q(case_type__in=CaseType.values), name="example_case_type_valid"
            ),
        ]

    def __str__(self) -> str:
        subject = str(self.ticket_snapshot.get("subject", ""))[:60]
        return f"{self.suite}/{self.case_type}: {subject}"


class EvaluationRun(models.Model):
    """One run of a suite against a backend, with its metrics and release verdict."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    suite = models.SlugField(max_length=64, db_index=True)
    workflow = models.CharField(max_length=64, default="support-triage")
    backend = models.CharField(max_length=32)
    model = models.CharField(max_length=64, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    code_version = models.CharField(
        max_length=64, blank=True, help_text="Digest of the code that decides and scores."
    )
    suite_hash = models.CharField(
        max_length=64, blank=True, help_text="Digest of the suite's cases as they were run."
    )
    environment = models.JSONField(
        default=dict, blank=True, help_text="Where it was measured: database, commit, history."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(null=True)
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        permissions = [("run_release_check", "Can run the release check (go / no-go)")]

    def __str__(self) -> str:
        return f"Evaluation {self.pk} of {self.suite} ({self.backend})"


class EvaluationResult(models.Model):
    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    example = models.ForeignKey(EvaluationExample, on_delete=models.CASCADE, related_name="results")
    agent_run = models.ForeignKey(
        AgentRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=16, blank=True)
    category = models.SlugField(max_length=64, blank=True)
    urgency = models.CharField(max_length=16, blank=True)
    confidence = models.CharField(max_length=8, blank=True)
    flags = models.JSONField(default=list, blank=True)
    passed = models.BooleanField(default=False)
    infrastructure_error = models.BooleanField(default=False)
    failure_reason = models.TextField(blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "example"]
        constraints = [
            models.UniqueConstraint(fields=["run", "example"], name="result_unique_per_run"),
        ]

    def __str__(self) -> str:
        return f"{'pass' if self.passed else 'fail'}: {self.example}"
