"""Admin for evaluation data; Triage admins curate examples. Runs and results are read-only
evidence; a run's page carries its report (see ``evaluations.report``)."""

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from agent.admin.runs import ReadOnlyAdmin
from agent.services import TRIAGE_WORKFLOW
from evaluations import report
from evaluations.builtin import suite_role
from evaluations.models import CaseType, EvaluationExample, EvaluationResult, EvaluationRun
from evaluations.release.check import release_check
from evaluations.scoring import compare

RELEASE_CHECK_PERMISSION = "evaluations.run_release_check"

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
                    "workflow",
                    "backend",
                    "model",
                    "prompt_version",
                    "code_version",
                    "suite_hash",
                    "environment",
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

    class Media:
        css = {"all": ["evaluations/report.css"]}  # the report on a run's page

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

    actions = ["compare_runs"]

    def get_urls(self) -> list[URLPattern]:
        check = self.admin_site.admin_view(self.release_check_view)
        compare = self.admin_site.admin_view(self.compare_view)
        return [
            path("release-check/", check, name="evaluations_release_check"),
            path("compare/", compare, name="evaluations_evaluationrun_compare"),
            *super().get_urls(),
        ]

    @admin.action(description="Compare the two selected runs side by side")
    def compare_runs(
        self, request: HttpRequest, queryset: QuerySet[EvaluationRun]
    ) -> HttpResponse | None:
        runs = list(queryset.order_by("started_at", "id")[:3])
        if len(runs) != 2:
            self.message_user(request, "Select exactly two runs to compare.", messages.WARNING)
            return None
        url = reverse("admin:evaluations_evaluationrun_compare")
        return HttpResponseRedirect(f"{url}?baseline={runs[0].pk}&run={runs[1].pk}")

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        """Two runs side by side: versions, pass rates, unsafe answers, per case type, and
        the examples that regressed or were fixed from the first (older) to the second."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            baseline = EvaluationRun.objects.get(pk=int(request.GET.get("baseline", "")))
            run = EvaluationRun.objects.get(pk=int(request.GET.get("run", "")))
        except (ValueError, EvaluationRun.DoesNotExist):
            raise Http404("Give two existing runs: ?baseline=<id>&run=<id>") from None
        changes = compare(
            dict(run.results.values_list("example_id", "passed")),
            dict(baseline.results.values_list("example_id", "passed")),
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run {baseline.pk} against run {run.pk}",
            "opts": self.model._meta,
            "baseline": baseline,
            "run": run,
            "comparison": _comparison(baseline, run),
            "same_suite": baseline.suite == run.suite,
            "regressions": _changes(run.pk, changes.regressions),
            "fixes": _changes(baseline.pk, changes.fixes),
        }
        return TemplateResponse(request, "admin/evaluations/evaluationrun/compare.html", context)

    def release_check_view(self, request: HttpRequest) -> HttpResponse:
        """The go / no-go report, computed live (its self-tests roll back). Triage admins."""
        if not request.user.has_perm(RELEASE_CHECK_PERMISSION):
            raise PermissionDenied
        try:
            report = release_check(workflow_name=request.GET.get("workflow", TRIAGE_WORKFLOW))
        except LookupError as error:
            raise Http404(str(error)) from error
        document = report.as_dict()
        tools = [
            {
                **tool,
                "schemas": json.dumps(
                    {"input": tool["input_schema"], "output": tool["output_schema"]}, indent=2
                ),
            }
            for tool in document["tools"]
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Release check: {report.verdict}",
            "report": report,
            "system": document["system"],
            "tools": tools,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/evaluations/release_check.html", context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        can_check = request.user.has_perm(RELEASE_CHECK_PERMISSION)
        extra_context = {**(extra_context or {}), "can_release_check": can_check}
        return super().changelist_view(request, extra_context)

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


def _summary(run: EvaluationRun) -> dict[str, Any]:
    """What ``report.version_comparison`` compares of a run."""
    return {
        "prompt_version": run.prompt_version,
        "model": f"{run.backend}:{run.model}",
        "code_version": run.code_version,
        "suite_hash": run.suite_hash,
        "database": (run.environment or {}).get("database", ""),
        "metrics": run.metrics or {},
    }


def _comparison(baseline: EvaluationRun, run: EvaluationRun) -> list[report.ComparisonRow]:
    return report.version_comparison(_summary(baseline), _summary(run), dict(CaseType.choices))


def _report_context(run: EvaluationRun) -> dict[str, Any]:
    """What templates/admin/evaluations/evaluationrun/report.html shows of ``run``."""
    metrics = run.metrics or {}
    return {
        "run": run,
        "suite_role": suite_role(run.suite),
        "environment": run.environment or {},
        "comparison": _comparison(run.baseline, run) if run.baseline else [],
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
        "learning_curve": _learning_curve(run),
    }


FIGURES = ("category_accuracy", "accuracy_given_attempted", "over_refusal_rate")


def _learning_curve(run: EvaluationRun) -> list[dict[str, Any]]:
    """The suite's finished runs on the same backend by the size of the labelled history they
    learnt from (the latest run of each size): how accuracy grows with corrections. Empty
    unless the history differed between runs."""
    latest: dict[int, dict[str, Any]] = {}
    # Only the figures shown, not each run's whole metrics (confusion matrices included).
    runs = (
        EvaluationRun.objects.filter(
            suite=run.suite, backend=run.backend, status=EvaluationRun.Status.FINISHED
        )
        .filter(environment__history_tickets__isnull=False, metrics__has_key="category_accuracy")
        .exclude(environment__history_tickets=None)  # a JSON null
        .order_by("started_at", "id")
        .values("id", "model", "environment__history_tickets", *(f"metrics__{f}" for f in FIGURES))
    )
    for row in runs:
        history = int(row["environment__history_tickets"])
        latest[history] = {
            **{name: row[f"metrics__{name}"] for name in FIGURES},
            "history_tickets": history,
            "run_id": row["id"],
            "url": reverse("admin:evaluations_evaluationrun_change", args=[row["id"]]),
            "model": row["model"],
            "current": row["id"] == run.pk,
        }
    return [latest[size] for size in sorted(latest)] if len(latest) > 1 else []


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
