"""The report of an evaluation run as template-ready data: its metrics, the confusion matrices as
heatmaps, per-case-type bars and the pass-rate trend of its suite.

Pure functions over the stored metrics (see ``evaluations.scoring.run_metrics``). The geometry
is computed here, the SVG markup lives in ``templates/admin/evaluations/``.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OTHER = "(other)"
CATEGORY_LIMIT = 20
LABEL_CHARS = 28  # longer labels are cut; the full text is in the cell's tooltip
CHAR_WIDTH = 6.6  # of an 11px sans-serif label, generous so that labels never overlap cells
WHITE = (255, 255, 255)
CORRECT = (33, 102, 172)  # blue; errors are orange: a pair that colour-blind readers tell apart
WRONG = (179, 88, 6)
DARK_TEXT, LIGHT_TEXT = "#1a1a1a", "#ffffff"


@dataclass(frozen=True)
class HeatmapCell:
    row: str
    column: str
    count: int
    share: float  # of the row's examples
    correct: bool  # on the diagonal: the expected label was given
    fill: str
    text_colour: str
    x: float
    y: float
    size: int

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.size / 2, self.y + self.size / 2


@dataclass(frozen=True)
class Label:
    text: str
    full: str
    x: float
    y: float
    total: int = 0


@dataclass(frozen=True)
class Heatmap:
    """Rows are expected labels, columns actual ones; shades show the share of the row."""

    rows: list[str]
    columns: list[str]
    cells: list[HeatmapCell]
    row_labels: list[Label]
    column_labels: list[Label]
    cell_size: int
    width: float
    height: float
    grid_x: float
    grid_y: float
    total_rows: int  # expected labels in the matrix, before the cap
    hidden_examples: int  # examples of the rows left out by the cap

    @property
    def capped(self) -> bool:
        return len(self.rows) < self.total_rows

    @property
    def show_counts(self) -> bool:
        return self.cell_size >= 24


def _mix(colour: tuple[int, int, int], share: float) -> tuple[int, int, int]:
    r, g, b = (round(w + (c - w) * share) for w, c in zip(WHITE, colour, strict=True))
    return r, g, b


def _luminance(rgb: tuple[int, int, int]) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def cell_colours(share: float, *, correct: bool) -> tuple[str, str]:
    """(fill, text colour) of a cell: white to blue (correct) or orange (wrong) as the row share
    grows, with whichever of dark or white text contrasts more with the fill."""
    share = max(0.0, min(1.0, share))
    # A square-root scale with a floor keeps a single confusion in a large row visible.
    intensity = 0.12 + 0.88 * math.sqrt(share) if share else 0.0
    rgb = _mix(CORRECT if correct else WRONG, intensity)
    lum = _luminance(rgb)
    text = LIGHT_TEXT if (1.05 / (lum + 0.05)) > ((lum + 0.05) / 0.05) else DARK_TEXT
    return "#{:02x}{:02x}{:02x}".format(*rgb), text


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def heatmap(matrix: Mapping[str, Mapping[str, int]], *, limit: int | None = None) -> Heatmap:
    """The confusion ``matrix`` ({expected: {actual: n}}) as a heatmap. With ``limit``, only the
    ``limit`` most frequent expected labels are rows (and columns); predictions outside them
    are summed in an ``(other)`` column, so each row still adds up to its examples."""
    totals = {row: sum(counts.values()) for row, counts in matrix.items()}
    ranked = sorted(totals, key=lambda row: (-totals[row], row))
    capped = limit is not None and len(ranked) > limit
    rows = sorted(ranked[:limit] if capped else ranked)
    kept = set(rows)
    if capped:
        outside = any(a not in kept for row in rows for a in matrix[row])
        columns = rows + ([OTHER] if outside else [])
    else:
        columns = sorted(set(rows) | {a for counts in matrix.values() for a in counts})
    cell_size = 28 if len(columns) <= 24 else 14
    grid_x = 12 + CHAR_WIDTH * max((len(_short(r)) + 6 for r in rows), default=0)
    label_reach = CHAR_WIDTH * max((len(_short(c)) for c in columns), default=0) * math.sqrt(0.5)
    grid_y = 10 + label_reach
    cells: list[HeatmapCell] = []
    for i, row in enumerate(rows):
        counts = matrix[row]
        for j, column in enumerate(columns):
            if column == OTHER:
                count = sum(n for a, n in counts.items() if a not in kept)
            else:
                count = counts.get(column, 0)
            share = count / totals[row] if totals[row] else 0.0
            fill, text = cell_colours(share, correct=row == column)
            x, y = grid_x + j * cell_size, grid_y + i * cell_size
            cells.append(
                HeatmapCell(row, column, count, share, row == column, fill, text, x, y, cell_size)
            )
    half = cell_size / 2
    return Heatmap(
        rows=rows,
        columns=columns,
        cells=cells,
        row_labels=[
            Label(_short(r), r, grid_x - 6, grid_y + i * cell_size + half, totals[r])
            for i, r in enumerate(rows)
        ],
        column_labels=[
            Label(_short(c), c, grid_x + j * cell_size + half, grid_y - 6)
            for j, c in enumerate(columns)
        ],
        cell_size=cell_size,
        width=math.ceil(grid_x + len(columns) * cell_size + label_reach + 4),
        height=math.ceil(grid_y + len(rows) * cell_size + 4),
        grid_x=grid_x,
        grid_y=grid_y,
        total_rows=len(ranked),
        hidden_examples=sum(totals[r] for r in ranked if r not in kept),
    )


@dataclass(frozen=True)
class RunRate:
    """One run's pass rate (and its 95% interval), as the trend plots it."""

    run_id: int
    pass_rate: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class TrendPoint:
    run_id: int
    pass_rate: float
    x: float
    y: float
    y_low: float
    y_high: float
    current: bool

    @property
    def percent(self) -> str:
        return f"{self.pass_rate:.1%}"


@dataclass(frozen=True)
class Tick:
    label: str
    y: float


@dataclass(frozen=True)
class Trend:
    points: list[TrendPoint]
    ticks: list[Tick]
    threshold_y: float | None
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def pass_rate_trend(
    runs: Sequence[RunRate],
    *,
    current: int | None = None,
    threshold: float | None = None,
    width: int = 520,
    height: int = 220,
) -> Trend:
    """The pass rates of ``runs`` (oldest first) scaled into a ``width`` x ``height`` viewBox:
    x by position, y (downwards) by pass rate on an axis of whole tens of percent that holds
    every rate, interval and the threshold. The run ``current`` is marked."""
    left, right, top, bottom = 44, width - 16, 12, height - 28
    values = [r.pass_rate for r in runs]
    values += [v for r in runs for v in (r.low, r.high) if v is not None]
    values += [threshold] if threshold is not None else []
    low = math.floor(min(values, default=0.0) * 10 + 1e-9) / 10
    high = math.ceil(max(values, default=1.0) * 10 - 1e-9) / 10
    if high - low < 0.1:
        low, high = (high - 0.1, high) if high >= 0.1 else (low, low + 0.1)

    def y_of(rate: float) -> float:
        return bottom - (rate - low) / (high - low) * (bottom - top)

    step = (right - left) / (len(runs) - 1) if len(runs) > 1 else 0.0
    points = [
        TrendPoint(
            run_id=r.run_id,
            pass_rate=r.pass_rate,
            x=left + i * step if len(runs) > 1 else (left + right) / 2,
            y=y_of(r.pass_rate),
            y_low=y_of(r.low if r.low is not None else r.pass_rate),
            y_high=y_of(r.high if r.high is not None else r.pass_rate),
            current=r.run_id == current,
        )
        for i, r in enumerate(runs)
    ]
    tenths = round((high - low) * 10)
    every = 1 if tenths <= 5 else 2
    ticks = [Tick(f"{low + k / 10:.0%}", y_of(low + k / 10)) for k in range(0, tenths + 1, every)]
    return Trend(
        points=points,
        ticks=ticks,
        threshold_y=y_of(threshold) if threshold is not None else None,
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
    )


@dataclass(frozen=True)
class CaseTypeBar:
    case_type: str
    label: str
    examples: int
    passed: int
    pass_rate: float
    unsafe_answers: int

    @property
    def percent(self) -> float:
        return round(self.pass_rate * 100, 1)


def case_type_bars(
    per_case_type: Mapping[str, Mapping[str, float]], labels: Mapping[str, str]
) -> list[CaseTypeBar]:
    """One bar per case type of the run, in the order of ``labels`` (then unknown types)."""
    order = {case_type: i for i, case_type in enumerate(labels)}
    return [
        CaseTypeBar(
            case_type=case_type,
            label=labels.get(case_type, case_type),
            examples=int(item["examples"]),
            passed=int(item["passed"]),
            pass_rate=float(item["pass_rate"]),
            unsafe_answers=int(item.get("unsafe_answers", 0)),
        )
        for case_type, item in sorted(
            per_case_type.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])
        )
    ]


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headline metrics as (name, formatted value); a rate with nothing to count is n/a."""
    low, high = metrics.get("pass_rate_ci95") or (None, None)
    tokens = metrics.get("tokens") or {}
    latency = metrics.get("latency_ms") or {}
    interval = f" (95% CI {_percent(low)} to {_percent(high)})" if low is not None else ""
    return [
        ("Pass rate", f"{_percent(metrics.get('pass_rate'))}{interval}"),
        ("Passed / scored", f"{metrics.get('passed', 0)} / {metrics.get('scored', 0)}"),
        ("Examples", str(metrics.get("examples", 0))),
        ("Infrastructure errors (not scored)", str(metrics.get("infrastructure_errors", 0))),
        ("Accuracy given attempted", _percent(metrics.get("accuracy_given_attempted"))),
        ("Category accuracy", _percent(metrics.get("category_accuracy"))),
        ("Category macro F1", _percent(metrics.get("category_macro_f1"))),
        ("Urgency accuracy", _percent(metrics.get("urgency_accuracy"))),
        ("Over-refusal rate", _percent(metrics.get("over_refusal_rate"))),
        ("Unsafe-answer rate", _percent(metrics.get("unsafe_answer_rate"))),
        ("Unsafe answers", str(metrics.get("unsafe_answers", 0))),
        ("Tokens (input / output)", f"{tokens.get('input', 0)} / {tokens.get('output', 0)}"),
        ("Cost", f"${float(metrics.get('cost_usd') or 0):.4f}"),
        ("Latency p50 / p95", f"{latency.get('p50', 0)} ms / {latency.get('p95', 0)} ms"),
        *(
            (
                f"Category accuracy at {band} confidence",
                f"{_percent(stats['accuracy'])} ({stats['correct']} / {stats['proposals']})",
            )
            for band in ("high", "medium", "low")
            if (stats := (metrics.get("per_confidence") or {}).get(band))
        ),
    ]


@dataclass(frozen=True)
class ComparisonRow:
    label: str
    baseline: str
    current: str
    change: str
    worse: bool = False


def version_comparison(
    baseline: Mapping[str, Any], current: Mapping[str, Any], labels: Mapping[str, str]
) -> list[ComparisonRow]:
    """Two runs side by side: what they ran (versions, suite, database) and how they scored
    (pass rate, unsafe answers, over-refusal, accuracy, each case type). Each run is a mapping
    with ``prompt_version``, ``model``, ``code_version``, ``suite_hash``, ``database`` and
    ``metrics``."""
    rows = [
        ComparisonRow(
            label,
            str(baseline.get(key) or "-"),
            str(current.get(key) or "-"),
            "same" if baseline.get(key) == current.get(key) else "changed",
        )
        for label, key in (
            ("Prompt version", "prompt_version"),
            ("Model", "model"),
            ("Code", "code_version"),
            ("Suite content", "suite_hash"),
            ("Database", "database"),
        )
    ]
    old, new = baseline.get("metrics") or {}, current.get("metrics") or {}
    rows.append(_rate_row("Pass rate", old.get("pass_rate"), new.get("pass_rate")))
    before, after = int(old.get("unsafe_answers", 0)), int(new.get("unsafe_answers", 0))
    rows.append(
        ComparisonRow(
            "Unsafe answers", str(before), str(after), f"{after - before:+d}", after > before
        )
    )
    rows.append(
        _rate_row(
            "Over-refusal rate",
            old.get("over_refusal_rate"),
            new.get("over_refusal_rate"),
            higher_is_better=False,
        )
    )
    rows.append(
        _rate_row("Category accuracy", old.get("category_accuracy"), new.get("category_accuracy"))
    )
    rows.append(
        _rate_row("Urgency accuracy", old.get("urgency_accuracy"), new.get("urgency_accuracy"))
    )
    old_types, new_types = old.get("per_case_type") or {}, new.get("per_case_type") or {}
    order = {case_type: i for i, case_type in enumerate(labels)}
    for case_type in sorted(
        set(old_types) | set(new_types), key=lambda t: (order.get(t, len(order)), t)
    ):
        rows.append(
            _rate_row(
                f"Pass rate: {labels.get(case_type, case_type)}",
                (old_types.get(case_type) or {}).get("pass_rate"),
                (new_types.get(case_type) or {}).get("pass_rate"),
            )
        )
    return rows


def _rate_row(
    label: str, before: float | None, after: float | None, *, higher_is_better: bool = True
) -> ComparisonRow:
    if before is None or after is None:
        return ComparisonRow(label, _percent(before), _percent(after), "n/a")
    points = (after - before) * 100
    worse = points < -1e-9 if higher_is_better else points > 1e-9
    return ComparisonRow(label, _percent(before), _percent(after), f"{points:+.1f} pts", worse)
