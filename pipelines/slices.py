"""TFMA metrics per slice as a table and a bar chart, read from an Evaluator's output.

Nothing here knows a task's columns or metrics: slices, metric names and thresholds all come from
what TFMA wrote (metrics, validation result and the EvalConfig it used).
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from components import evaluation
from components.evaluation import Threshold

COUNT_METRIC = "example_count"


def normalize(name: str) -> str:
    """'AUC', 'auc', 'BinaryAccuracy' and 'binary_accuracy' all compare equal."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def fmt(value: Optional[float], digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def fmt_diff(value: Optional[float], digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) < 0.5 * 10 ** -digits:
        return "±0"
    return f"{value:+.{digits}f}"


def _finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass
class SliceRow:
    name: str  # "Overall", "gender=Female", ...
    key: tuple  # TFMA slice key; () is Overall
    candidate: Dict[str, float]
    baseline: Dict[str, float]
    thresholds: List[Threshold] = field(default_factory=list)  # the ones that apply to this slice
    failures: List[str] = field(default_factory=list)  # from TFMA's validation result

    @property
    def example_count(self) -> Optional[float]:
        return self.candidate.get(COUNT_METRIC)

    @property
    def columns(self) -> tuple:
        return tuple(column for column, _ in self.key)

    @property
    def status(self) -> Optional[str]:
        """'pass' / 'fail' where a threshold applied, None ('—') elsewhere."""
        if self.failures:
            return "fail"
        return "pass" if self.thresholds else None

    def diff(self, metric: str) -> Optional[float]:
        c, b = self.candidate.get(metric), self.baseline.get(metric)
        return c - b if _finite(c) and _finite(b) else None


@dataclass
class SliceTable:
    evaluation_uri: str
    rows: List[SliceRow]
    metrics: List[str]  # metric columns in TFMA's order, without example_count
    thresholds: List[Threshold]
    has_baseline: bool
    validation_ok: bool
    reasons: List[str]

    def resolve_metric(self, name: str) -> str:
        """The TFMA metric name matching `name` ('AUC' -> 'auc'); KeyError listing the known ones."""
        wanted = normalize(name)
        for metric in self.metrics + [COUNT_METRIC]:
            if normalize(metric) == wanted:
                return metric
        raise KeyError(f"no metric {name!r} in this evaluation; metrics: {', '.join(self.metrics)}")

    def default_metric(self, preferred: Optional[str] = None) -> Optional[str]:
        """The metric thresholds gate on (else `preferred`, e.g. the task's, else the first one)."""
        for threshold in self.thresholds:
            if threshold.metric in self.metrics:
                return threshold.metric
        if preferred:
            try:
                return self.resolve_metric(preferred)
            except KeyError:
                pass
        return self.metrics[0] if self.metrics else None

    def value_thresholds(self, metric: str) -> List[Threshold]:
        return [t for t in self.thresholds if t.metric == metric and t.kind == "value"]

    @property
    def overall(self) -> Optional[SliceRow]:
        return next((row for row in self.rows if not row.key), None)


def load_slice_table(evaluation_uri: str) -> SliceTable:
    """Rows for every slice TFMA wrote: Overall first, then by slicing spec and value."""
    per_slice = evaluation.load_slice_metrics(evaluation_uri)
    thresholds = evaluation.load_thresholds(evaluation_uri)
    failures = evaluation.slice_failures(evaluation_uri)
    validation_ok, reasons = evaluation.validation_failures(evaluation_uri)
    config = evaluation.load_eval_config(evaluation_uri)

    metrics: List[str] = []
    rows = []
    for item in per_slice:
        for name in list(item.candidate) + list(item.baseline):
            if name != COUNT_METRIC and name not in metrics:
                metrics.append(name)
        rows.append(SliceRow(
            name=item.slice,
            key=tuple(item.key),
            candidate=item.candidate,
            baseline=item.baseline,
            thresholds=[t for t in thresholds if t.applies_to(tuple(item.key))],
            failures=failures.get(item.slice, []),
        ))

    spec_order: Dict[tuple, int] = {}
    for i, spec in enumerate(config.slicing_specs if config else []):
        spec_order.setdefault(tuple(spec.feature_keys) + tuple(sorted(spec.feature_values)), i)

    def order(row: SliceRow):
        columns = row.columns
        return (bool(columns), spec_order.get(columns, len(spec_order)), columns,
                tuple(str(v) for _, v in row.key))

    rows.sort(key=order)
    return SliceTable(
        evaluation_uri=evaluation_uri,
        rows=rows,
        metrics=metrics,
        thresholds=thresholds,
        has_baseline=evaluation.has_baseline(evaluation_uri),
        validation_ok=validation_ok,
        reasons=reasons,
    )


# --- Charts ---------------------------------------------------------------------------------------

_PASS, _FAIL, _PLAIN, _LOW, _BASE = "#2e7d32", "#c62828", "#4f7cac", "#e0a030", "#222222"


def slice_figure(table: SliceTable, metric: str, baseline: Optional[bool] = None):
    """Horizontal bars of `metric` per slice, value thresholds as dashed lines.

    Bars of slices a threshold gates are green (pass) or red (fail); other slices are blue, amber
    when they fall below a lower-bound threshold line. Baseline values (when the Evaluator had a
    baseline) are black ticks.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    show_baseline = table.has_baseline if baseline is None else (baseline and table.has_baseline)
    rows = table.rows
    n = len(rows)
    fig = Figure(figsize=(9.0, max(2.6, 0.27 * n + 1.5)), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    lower_lines = [t.lower for t in table.value_thresholds(metric) if t.lower is not None]
    floor = max(lower_lines) if lower_lines else None

    values, colors, used = [], [], set()
    for row in rows:
        value = row.candidate.get(metric)
        gating = [t for t in row.thresholds if t.metric == metric]
        if gating:
            color = _FAIL if any(f.startswith(metric + " ") for f in row.failures) else _PASS
        elif floor is not None and _finite(value) and value < floor:
            color = _LOW
        else:
            color = _PLAIN
        used.add(color)
        values.append(value if _finite(value) else 0.0)
        colors.append(color)

    positions = list(range(n))
    ax.barh(positions, values, color=colors, height=0.68, zorder=2)
    labels = [f"{row.name}  (n={fmt(row.example_count, 0)})" if row.example_count is not None else row.name
              for row in rows]
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=8.5)
    ax.set_ylim(n - 0.5, -0.5)  # top to bottom, no padding rows

    finite = [v for v, row in zip(values, rows) if _finite(row.candidate.get(metric))]
    if show_baseline:
        finite += [row.baseline[metric] for row in rows if _finite(row.baseline.get(metric))]
    top = max(finite + [t for t in (lower_lines or [])] + [0.0]) or 1.0
    ax.set_xlim(min(0.0, min(finite, default=0.0)), top * 1.12)

    for pos, row in zip(positions, rows):
        value = row.candidate.get(metric)
        text = fmt(value, 3) if value is not None else "—"
        ax.text((value if _finite(value) else 0.0) + top * 0.01, pos, text, va="center", fontsize=7.5,
                color="#333333", zorder=4)

    if show_baseline:
        base = [(pos, row.baseline.get(metric)) for pos, row in zip(positions, rows)
                if _finite(row.baseline.get(metric))]
        if base:
            ax.scatter([v for _, v in base], [p for p, _ in base], marker="|", s=160, linewidths=2,
                       color=_BASE, zorder=5)

    handles = []
    for threshold in table.value_thresholds(metric):
        for bound in (threshold.lower, threshold.upper):
            if bound is None:
                continue
            ax.axvline(bound, color=_FAIL, linestyle="--", linewidth=1.4, zorder=3)
            handles.append(Line2D([], [], color=_FAIL, linestyle="--",
                                  label=f"threshold {threshold.text()}"))

    # Thin separators between slicing specs (Overall | gender | race ...).
    for pos in range(1, n):
        if rows[pos].columns != rows[pos - 1].columns:
            ax.axhline(pos - 0.5, color="#bbbbbb", linewidth=0.8, zorder=1)

    legend_names = {_PASS: "threshold applies: pass", _FAIL: "threshold applies: fail",
                    _PLAIN: "reported only", _LOW: "reported only, below threshold line"}
    handles += [Patch(color=c, label=legend_names[c]) for c in (_PASS, _FAIL, _PLAIN, _LOW) if c in used]
    if show_baseline:
        handles.append(Line2D([], [], color=_BASE, marker="|", linestyle="none", markersize=10,
                              markeredgewidth=2, label="baseline model"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8,
              frameon=False)
    ax.set_xlabel(metric)
    ax.grid(axis="x", color="#e5e5e5", zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def write_png(table: SliceTable, metric: str, path: str, baseline: Optional[bool] = None) -> None:
    with open(path, "wb") as f:
        f.write(figure_png(slice_figure(table, metric, baseline)))


def chart_rows(table: SliceTable, metric: str, show_baseline: bool) -> List[Dict[str, str]]:
    """The numbers behind the chart, formatted: one row per slice."""
    rows = []
    for row in table.rows:
        cells = {"slice": row.name, "examples": fmt(row.example_count, 0), "value": fmt(row.candidate.get(metric)),
                 "threshold": row.status or "—"}
        if show_baseline:
            cells.update(baseline=fmt(row.baseline.get(metric)), diff=fmt_diff(row.diff(metric)))
        rows.append(cells)
    return rows


def chart_html(table: SliceTable, metric: str, title: str, baseline: Optional[bool] = None) -> str:
    """A self-contained page: the chart (inline PNG), its thresholds and the numbers behind it
    (template: pipelines/report/templates/slice_chart.html.j2)."""
    from pipelines.report.rendering import render_template

    show_baseline = table.has_baseline if baseline is None else bool(baseline and table.has_baseline)
    return render_template(
        "slice_chart.html.j2",
        title=title,
        metric=metric,
        evaluation_uri=table.evaluation_uri,
        thresholds=[t.text() for t in table.thresholds],
        has_baseline=table.has_baseline,
        show_baseline=show_baseline,
        image=png_data_uri(figure_png(slice_figure(table, metric, baseline))),
        rows=chart_rows(table, metric, show_baseline),
    )


def write_html(table: SliceTable, metric: str, path: str, title: str, baseline: Optional[bool] = None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(chart_html(table, metric, title, baseline))

