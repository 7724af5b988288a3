"""The run report: heatmaps, per-case-type bars and the pass-rate trend as data, and the admin
page that draws them for a run."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from evaluations.models import EvaluationExample, EvaluationResult, EvaluationRun
from evaluations.report import (
    OTHER,
    RunRate,
    case_type_bars,
    cell_colours,
    heatmap,
    metric_rows,
    pass_rate_trend,
)
from evaluations.scoring import Actual, Expected, Scored, run_metrics, score_result
from tests.factories import UserFactory

LABELS = {"normal": "Normal", "ambiguous": "Ambiguous", "unsafe_action": "Unsafe action"}


def test_heatmap_sorts_labels_and_shades_by_share_of_the_row() -> None:
    chart = heatmap({"refund": {"refund": 3, "billing": 1}, "billing": {"billing": 2}})

    assert chart.rows == ["billing", "refund"]
    assert chart.columns == ["billing", "refund"]
    cells = {(c.row, c.column): c for c in chart.cells}
    assert len(cells) == 4
    assert (cells["refund", "billing"].count, cells["refund", "billing"].share) == (1, 0.25)
    assert (cells["refund", "refund"].share, cells["refund", "refund"].correct) == (0.75, True)
    assert (cells["billing", "refund"].count, cells["billing", "refund"].fill) == (0, "#ffffff")
    assert not cells["refund", "billing"].correct
    assert [label.total for label in chart.row_labels] == [2, 4]
    assert not chart.capped


def test_heatmap_tells_right_answers_from_confusions_by_hue() -> None:
    right, _ = cell_colours(0.5, correct=True)
    wrong, _ = cell_colours(0.5, correct=False)

    assert right != wrong
    assert cell_colours(0.0, correct=True) == ("#ffffff", "#1a1a1a")
    assert cell_colours(1.0, correct=True)[1] == "#ffffff"  # white text on the darkest fill


def test_heatmap_caps_to_the_most_frequent_expected_labels() -> None:
    matrix = {f"c{i:02d}": {f"c{i:02d}": i + 1, "c00": 1} for i in range(25)}

    chart = heatmap(matrix, limit=20)

    assert chart.capped
    assert (chart.total_rows, len(chart.rows)) == (25, 20)
    assert chart.rows == sorted(f"c{i:02d}" for i in range(5, 25))
    assert chart.columns == [*chart.rows, OTHER]
    assert chart.hidden_examples == sum(i + 2 for i in range(5)) - 1  # c00 -> c00 counts once
    for row in chart.rows:
        row_cells = [c for c in chart.cells if c.row == row]
        assert sum(c.count for c in row_cells) == sum(matrix[row].values())
        assert next(c for c in row_cells if c.column == OTHER).count == 1  # the c00 answers


def test_heatmap_of_nothing_is_empty() -> None:
    chart = heatmap({}, limit=20)

    assert (chart.rows, chart.columns, chart.cells, chart.capped) == ([], [], [], False)


def test_trend_points_rise_with_the_pass_rate_and_stay_in_the_view_box() -> None:
    runs = [RunRate(1, 0.5, 0.4, 0.6), RunRate(2, 0.9, 0.85, 0.95), RunRate(3, 0.7)]

    trend = pass_rate_trend(runs, current=3, threshold=0.8)

    xs = [p.x for p in trend.points]
    assert xs == sorted(xs)
    assert (xs[0], xs[-1]) == (trend.left, trend.right)
    by_rate = sorted(trend.points, key=lambda p: p.pass_rate)
    assert [p.y for p in by_rate] == sorted((p.y for p in by_rate), reverse=True)  # SVG y is down
    assert all(trend.top <= p.y_high <= p.y <= p.y_low <= trend.bottom for p in trend.points)
    assert [p.current for p in trend.points] == [False, False, True]
    assert trend.threshold_y is not None
    assert trend.points[1].y < trend.threshold_y < trend.points[2].y
    assert [t.label for t in trend.ticks] == ["40%", "60%", "80%", "100%"]
    assert trend.points[1].percent == "90.0%"


def test_trend_of_one_run_or_none() -> None:
    single = pass_rate_trend([RunRate(7, 1.0)], current=7)

    assert single.points[0].x == (single.left + single.right) / 2
    assert single.points[0].y == single.top
    assert pass_rate_trend([]).points == []


def _scored(example_id: int, expected: Expected, actual: Actual) -> Scored:
    passed, reason = score_result(expected, actual)
    return Scored(example_id, expected, actual, passed, reason)


BILLING = Expected(["proposal"], category="billing")
ASK = Expected(["clarification"], case_type="ambiguous")
REFUSE = Expected(["refusal"], case_type="unsafe_action")


def test_case_type_bars_follow_the_case_type_order() -> None:
    metrics = run_metrics(
        [
            _scored(1, REFUSE, Actual("proposal", "billing")),
            _scored(2, ASK, Actual("clarification")),
            _scored(3, ASK, Actual("proposal", "billing")),
            _scored(4, BILLING, Actual("proposal", "billing")),
        ]
    )

    bars = case_type_bars(metrics["per_case_type"], LABELS)  # type: ignore[arg-type]

    assert [(b.label, b.passed, b.examples, b.percent, b.unsafe_answers) for b in bars] == [
        ("Normal", 1, 1, 100.0, 0),
        ("Ambiguous", 1, 2, 50.0, 1),
        ("Unsafe action", 0, 1, 0.0, 1),
    ]
    assert case_type_bars({}, LABELS) == []


def test_metric_rows_show_the_interval_and_na_for_rates_without_cases() -> None:
    rows = dict(metric_rows(run_metrics([_scored(1, BILLING, Actual("proposal", "billing"))])))

    assert rows["Pass rate"] == "100.0% (95% CI 20.7% to 100.0%)"
    assert rows["Unsafe-answer rate"] == "n/a"
    assert dict(metric_rows({}))["Pass rate"] == "n/a"


# The admin page


def _example(case_type: str, category: str = "", outcomes: tuple[str, ...] = ("proposal",)):  # type: ignore[no-untyped-def]
    return EvaluationExample.objects.create(
        suite="core",
        source=EvaluationExample.Source.CURATED,
        case_type=case_type,
        ticket_snapshot={"subject": f"{case_type} {category}", "body": "..."},
        acceptable_outcomes=list(outcomes),
        expected_category=category,
    )


def _run(examples, actuals, *, baseline=None, hours=0):  # type: ignore[no-untyped-def]
    """A finished run whose results and metrics come from the scoring code."""
    run = EvaluationRun.objects.create(
        suite="core",
        backend="offline",
        status=EvaluationRun.Status.FINISHED,
        started_at=timezone.now() + timedelta(hours=hours),
        baseline=baseline,
        threshold=0.5,
    )
    scored = []
    for example, actual in zip(examples, actuals, strict=True):
        expected = Expected(
            example.acceptable_outcomes, example.expected_category, "", example.case_type
        )
        item = _scored(example.pk, expected, actual)
        scored.append(item)
        EvaluationResult.objects.create(
            run=run,
            example=example,
            outcome=actual.outcome,
            category=actual.category,
            passed=item.passed,
            failure_reason=item.reason,
        )
    previous = dict(baseline.results.values_list("example_id", "passed")) if baseline else None
    run.metrics = run_metrics(scored, previous)
    run.save()
    return run


@pytest.fixture
def runs(db):  # type: ignore[no-untyped-def]
    examples = [
        _example("normal", "billing"),
        _example("normal", "outage"),
        _example("ambiguous", outcomes=("clarification",)),
        _example("unsafe_action", outcomes=("refusal",)),
    ]
    baseline = _run(
        examples,
        [
            Actual("proposal", "billing"),
            Actual("proposal", "billing"),
            Actual("clarification"),
            Actual("refusal"),
        ],
    )
    current = _run(
        examples,
        [
            Actual("proposal", "outage"),
            Actual("proposal", "outage"),
            Actual("clarification"),
            Actual("proposal", "billing"),
        ],
        baseline=baseline,
        hours=1,
    )
    return examples, baseline, current


def test_run_page_shows_the_report(client: Client, runs) -> None:  # type: ignore[no-untyped-def]
    examples, baseline, current = runs
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(f"/admin/evaluations/evaluationrun/{current.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "50.0% (95% CI" in html  # 2 of 4 pass
    assert html.count('<svg class="heatmap"') == 2
    assert "expected billing, actual outage: 1 (100% of the row)" in html
    assert "expected proposal, actual proposal: 2 (100% of the row)" in html
    assert re.search(r"<td>Ambiguous</td>.*?100\.0%.*?1 / 1", html, re.S)
    assert re.search(r"<td>Unsafe action</td>.*?0\.0%.*?0 / 1.*?\"unsafe\">1<", html, re.S)
    assert "2 regressions, 1 fix." in html
    regression = f'<a href="/admin/evaluations/evaluationexample/{examples[0].pk}/change/">'
    assert regression in html
    assert "category outage, expected billing" in html
    assert "outcome proposal, expected refusal" in html
    assert '<svg class="trend"' in html
    assert f"Run {baseline.pk}: 75.0%" in html
    assert f"Run {current.pk} (this run): 50.0%" in html
    assert 'name="_save"' not in html  # read-only


def test_run_without_metrics_says_so(client: Client, db) -> None:  # type: ignore[no-untyped-def]
    run = EvaluationRun.objects.create(suite="core", backend="offline")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(f"/admin/evaluations/evaluationrun/{run.pk}/change/")

    assert page.status_code == 200
    assert "No metrics yet: the run is running." in page.content.decode()


def test_results_list_filters_by_run(client: Client, runs) -> None:  # type: ignore[no-untyped-def]
    _, _, current = runs
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(
        f"/admin/evaluations/evaluationresult/?run__id__exact={current.pk}&passed__exact=0"
    )

    assert page.status_code == 200
    assert "2 evaluation results" in page.content.decode()


def test_reviewer_reads_the_report(client: Client, runs, reviewer) -> None:  # type: ignore[no-untyped-def]
    _, _, current = runs
    client.force_login(reviewer)

    page = client.get(f"/admin/evaluations/evaluationrun/{current.pk}/change/")

    assert page.status_code == 200
    assert '<svg class="trend"' in page.content.decode()


def test_report_needs_the_evaluation_view_permission(client: Client, runs) -> None:  # type: ignore[no-untyped-def]
    _, _, current = runs
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_triageproposal"))
    client.force_login(staff)

    page = client.get(f"/admin/evaluations/evaluationrun/{current.pk}/change/")

    assert page.status_code == 403
    assert "heatmap" not in page.content.decode()


def test_version_comparison_shows_what_changed_and_what_got_worse() -> None:
    from evaluations.report import version_comparison

    def summary(prompt: str, pass_rate: float, unsafe: int, ambiguous: float) -> dict:  # type: ignore[type-arg]
        return {
            "prompt_version": prompt,
            "model": "offline:m1",
            "code_version": "code@1",
            "suite_hash": "suite@1",
            "database": "postgresql 15.20",
            "metrics": {
                "pass_rate": pass_rate,
                "unsafe_answers": unsafe,
                "over_refusal_rate": 0.1,
                "per_case_type": {"ambiguous": {"pass_rate": ambiguous}},
            },
        }

    rows = {
        row.label: row
        for row in version_comparison(
            summary("p@1", 0.8, 0, 0.5), summary("p@2", 0.9, 1, 0.25), LABELS
        )
    }

    assert (rows["Prompt version"].change, rows["Model"].change) == ("changed", "same")
    assert (rows["Pass rate"].change, rows["Pass rate"].worse) == ("+10.0 pts", False)
    assert (rows["Unsafe answers"].change, rows["Unsafe answers"].worse) == ("+1", True)
    assert rows["Pass rate: Ambiguous"].worse
    assert rows["Pass rate: Ambiguous"].current == "25.0%"
    assert rows["Over-refusal rate"].change == "+0.0 pts"
    assert rows["Category accuracy"].change == "n/a"


def test_two_runs_side_by_side_in_the_admin(client: Client, runs) -> None:  # type: ignore[no-untyped-def]
    examples, baseline, current = runs
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    report = client.get(f"/admin/evaluations/evaluationrun/{current.pk}/change/").content.decode()
    action = client.post(
        "/admin/evaluations/evaluationrun/",
        {"action": "compare_runs", "_selected_action": [baseline.pk, current.pk]},
    )
    page = client.get(action["Location"])

    assert re.search(r"Unsafe answers</th><td>0</td><td>1</td>", report)  # the report's table
    assert action.status_code == 302
    assert action["Location"].endswith(f"compare/?baseline={baseline.pk}&run={current.pk}")
    html = page.content.decode()
    assert page.status_code == 200
    assert re.search(
        r"Pass rate</th><td>75.0%</td><td>50.0%</td>\s*<td><span class=\"unsafe\">-25.0 pts", html
    )
    assert f"/admin/evaluations/evaluationexample/{examples[0].pk}/change/" in html  # a regression
    assert "category outage, expected billing" in html
    assert (
        client.get("/admin/evaluations/evaluationrun/compare/?baseline=x&run=1").status_code == 404
    )
    one = client.post(
        "/admin/evaluations/evaluationrun/",
        {"action": "compare_runs", "_selected_action": [current.pk]},
        follow=True,
    )
    assert "Select exactly two runs to compare." in one.content.decode()


def test_the_report_shows_the_learning_curve_by_history_size(client: Client, runs) -> None:  # type: ignore[no-untyped-def]
    """Runs that learnt from different amounts of labelled history make a learning curve."""
    _examples, baseline, current = runs
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/evaluations/evaluationrun/{current.pk}/change/").content.decode()
    assert "Learning curve" not in page  # no history size recorded: no curve

    for run, history in ((baseline, 0), (current, 250)):
        run.environment = {"history_tickets": history}
        run.save()
    html = client.get(f"/admin/evaluations/evaluationrun/{current.pk}/change/").content.decode()

    curve = html[html.index("<h2>Learning curve</h2>") : html.index("<h2>Confusion matrices")]
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>([\d.]+)</td>", curve)
    assert rows == [  # category accuracy at each size, smallest history first
        ("0", f"{baseline.metrics['category_accuracy']:.3f}"),
        ("250", f"{current.metrics['category_accuracy']:.3f}"),
    ]
    assert "this run" in curve
