"""Admin for evaluation data; Triage admins curate examples."""

from django.contrib import admin

from evaluations.models import EvaluationExample, EvaluationResult, EvaluationRun


@admin.register(EvaluationExample)
class EvaluationExampleAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "suite",
        "case_type",
        "source",
        "expected_category",
        "expected_urgency",
        "is_active",
        "updated_at",
    ]
    list_filter = ["suite", "case_type", "source", "is_active"]
    search_fields = ["ticket_snapshot", "notes", "external_id", "expected_category"]
    raw_id_fields = ["proposal"]
    readonly_fields = ["author", "created_at", "updated_at"]


class EvaluationResultInline(admin.TabularInline):
    model = EvaluationResult
    extra = 0
    can_delete = False
    fields = ("example", "outcome", "category", "urgency", "passed", "failure_reason")
    readonly_fields = fields


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "suite", "backend", "model", "status", "passed", "started_at"]
    list_filter = ["suite", "backend", "status", "passed"]
    readonly_fields = [
        "suite",
        "backend",
        "model",
        "prompt_version",
        "code_version",
        "status",
        "started_at",
        "finished_at",
        "metrics",
        "threshold",
        "passed",
        "baseline",
    ]
    inlines = [EvaluationResultInline]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
