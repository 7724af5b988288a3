"""Admin for evaluation data; Triage admins curate examples. Runs and results are read-only
evidence; a run's page carries its report (see ``evaluations.report``)."""

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from agent.admin.runs import ReadOnlyAdmin
from evaluations import report
from evaluations.models import CaseType, EvaluationExample, EvaluationResult, EvaluationRun

TREND_RUNS = 20
LISTED_CHANGES = 100  # regressions or fixes listed on the page; the rest are counted


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


@admin.register(EvaluationResult)
class EvaluationResultAdmin(ReadOnlyAdmin):
    # Why it failed comes first: the list is mostly read filtered to one run's failures.
    list_display = ["id", "example", "passed", "failure_reason", "outcome", "category", "run"]
    list_filter = ["passed", "infrastructure_error", "outcome", "example__case_type", "run__suite"]
    search_fields = ["failure_reason", "category", "example__external_id"]
    list_select_related = ["run", "example"]


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "suite",
        "backend",
        "model",
        "status",
        "pass_rate",
        "passed",
        "started_at",
    ]
    list_filter = ["suite", "backend", "status", "passed"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "suite",
                    "backend",
                    "model",
                    "prompt_version",
                    "code_version",
                    "status",
                    "started_at",
                    "finished_at",
                    "threshold",
                    "passed",
                    "baseline_link",
                    "results_link",
                ]
            },
        ),
        ("Raw metrics", {"classes": ["collapse"], "fields": ["metrics_json"]}),
    ]
    readonly_fields = ["baseline_link", "results_link", "metrics_json"]

    @admin.display(description="pass rate")
    def pass_rate(self, run: EvaluationRun) -> str:
        rate = run.metrics.get("pass_rate")
        return "-" if rate is None else f"{rate:.1%}"

    @admin.display(description="baseline")
    def baseline_link(self, run: EvaluationRun) -> str:
        if run.baseline_id is None:
            return "-"
        url = reverse("admin:evaluations_evaluationrun_change", args=[run.baseline_id])
        return format_html('<a href="{}">{}</a>', url, run.baseline)

    @admin.display(description="results")
    def results_link(self, run: EvaluationRun) -> str:
        url = reverse("admin:evaluations_evaluationresult_changelist")
        failed = run.results.filter(passed=False).count()
        return format_html(
            '<a href="{}?run__id__exact={}">All {} results</a> (<a href="{}?run__id__exact={}'
            '&amp;passed__exact=0">{} failed</a>)',
            url,
            run.pk,
            run.results.count(),
            url,
            run.pk,
            failed,
        )

    @admin.display(description="metrics")
    def metrics_json(self, run: EvaluationRun) -> str:
        return format_html("<pre>{}</pre>", json.dumps(run.metrics, indent=2, sort_keys=True))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        if run is not None and self.has_view_permission(request, run):
            extra_context = {**(extra_context or {}), "report": _report_context(run)}
        return super().change_view(request, object_id, form_url, extra_context)


def _report_context(run: EvaluationRun) -> dict[str, Any]:
    """What templates/admin/evaluations/evaluationrun/report.html shows of ``run``."""
    metrics = run.metrics or {}
    return {
        "run": run,
        "has_metrics": bool(metrics),
        "metric_rows": report.metric_rows(metrics),
        "outcomes": report.heatmap(metrics.get("outcome_confusion") or {}),
        "categories": report.heatmap(
            metrics.get("category_confusion") or {}, limit=report.CATEGORY_LIMIT
        ),
        "case_types": report.case_type_bars(
            metrics.get("per_case_type") or {}, dict(CaseType.choices)
        ),
        "has_baseline": "regressions" in metrics,
        "regressions": _changes(run.pk, metrics.get("regressions") or []),
        "fixes": _changes(run.baseline_id, metrics.get("fixes") or []),
        "trend": report.pass_rate_trend(_trend_runs(run), current=run.pk, threshold=run.threshold),
    }


def _changes(run_id: int | None, example_ids: list[int]) -> dict[str, Any]:
    """Results of ``run_id`` for the listed examples: for regressions this run's (why they fail
    now), for fixes the baseline's (why they failed before)."""
    listed = example_ids[:LISTED_CHANGES]
    results = EvaluationResult.objects.filter(run_id=run_id, example_id__in=listed)
    by_example = {r.example_id: r for r in results.select_related("example")}
    rows = []
    for example_id in listed:
        result = by_example.get(example_id)
        rows.append(
            {
                "example_id": example_id,
                "url": reverse("admin:evaluations_evaluationexample_change", args=[example_id]),
                "example": result.example if result else f"Example {example_id}",
                "reason": result.failure_reason if result else "",
                "trace_url": (
                    reverse("admin:agent_agentrun_change", args=[result.agent_run_id])
                    if result and result.agent_run_id
                    else ""
                ),
            }
        )
    return {"count": len(example_ids), "rows": rows, "more": len(example_ids) - len(listed)}


def _trend_runs(run: EvaluationRun) -> list[report.RunRate]:
    """The last TREND_RUNS finished runs of the suite, oldest first; when ``run`` is older than
    those, the TREND_RUNS up to and including it."""
    rows = list(
        EvaluationRun.objects.filter(suite=run.suite, status=EvaluationRun.Status.FINISHED)
        .exclude(metrics__pass_rate=None)
        .order_by("started_at", "id")
        .values_list("id", "metrics__pass_rate", "metrics__pass_rate_ci95")
    )
    ids = [row[0] for row in rows]
    end = ids.index(run.pk) + 1 if run.pk in ids[:-TREND_RUNS] else len(rows)
    return [
        report.RunRate(run_id, float(rate), *(ci or (None, None)))
        for run_id, rate, ci in rows[max(0, end - TREND_RUNS) : end]
    ]
