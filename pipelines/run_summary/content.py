"""What the run summary step writes, from the run's evaluation: the Markdown summary (decision, why,
baseline, the threshold metric per slice), the overall metrics, and a classifier's confusion matrix
and ROC points in the shapes the KFP UI validates (MetricsVisualizations.tsx, ROCCurveHelper.tsx)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

from pipelines import slices

# TFMA's binary plot threshold the summary's confusion matrix is read at (the serving decision).
DECISION_THRESHOLD = 0.5


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(context: Dict[str, Any], table: Optional[slices.SliceTable], metric: Optional[str]) -> str:
    """The Markdown summary of a report context (pipelines.report.build_context) and its slice table."""
    task = context["task"]
    status, verdict = context["status"], context.get("verdict") or {}
    blessing = context["sections"].get("blessing")
    blessing_data = blessing.data if blessing else {}
    lines = [f"# {task}: {status['text']}", ""]
    if verdict.get("kind") == "not-blessed":
        lines.append("**Not blessed**, because:")
        lines += [f"- {_cell(reason)}" for reason in verdict["reasons"]]
    elif verdict.get("kind") == "blessed":
        lines.append("**Blessed**: every threshold passed.")
        lines += [f"- {_cell(c['slice'])}: {_cell(c['threshold'])}: {_cell(c['value'])} ({c['result']})"
                  for c in verdict.get("checks") or []]
    elif verdict.get("kind") == "note":
        lines.append(_cell(verdict["message"]))
    baseline = blessing_data.get("baseline_version")
    lines += ["", f"**Baseline**: {baseline if baseline and baseline != 'none' else 'none (no blessed model yet)'}",
              "", "Pushing and registering are the Pusher's and Registrar's steps of this run; this step "
              "does not wait for them and cannot change them.", ""]
    if table is None or metric is None:
        lines.append("_No evaluation to tabulate._")
        return "\n".join(lines) + "\n"
    lines += [f"## {metric} by slice (test split)", "",
              "| Slice | Examples | " + metric + " | Δ vs baseline | Threshold | Result |",
              "|---|---:|---:|---:|---|---|"]
    for row in table.rows:
        thresholds = [t.text() for t in row.thresholds if t.metric == metric]
        count = row.example_count
        lines.append("| " + " | ".join([
            _cell(row.name),
            "—" if count is None else f"{int(count):,}",
            slices.fmt(row.candidate.get(metric)),
            slices.fmt_diff(row.diff(metric)) if table.has_baseline else "—",
            _cell("; ".join(thresholds)) or "—",
            {"pass": "pass", "fail": "**fail**"}.get(row.status or "", "—"),
        ]) + " |")
    return "\n".join(lines) + "\n"


def scalar_metrics(table: Optional[slices.SliceTable]) -> Dict[str, float]:
    """The Overall slice's finite metrics (example_count included), for system.Metrics."""
    if table is None or table.overall is None:
        return {}
    return {name: float(value) for name, value in table.overall.candidate.items()
            if isinstance(value, (int, float)) and math.isfinite(value)}


def _overall_plot(evaluation_uri: str, field: str):
    """The Overall slice's plot data of one kind (a TFMA PlotData field), None when not computed."""
    import tensorflow_model_analysis as tfma

    for per_slice in tfma.load_plots(evaluation_uri):
        if per_slice.HasField("cross_slice_key") or per_slice.slice_key.single_slice_keys:
            continue
        for item in per_slice.plot_keys_and_values:
            if item.key.model_name in ("baseline",):
                continue
            if item.value.HasField(field):
                return getattr(item.value, field)
    return None


def binary_classification(evaluation_uri: str, class_names: Sequence[str]) -> Optional[Dict[str, Any]]:
    """confusionMatrix at the decision threshold and confidenceMetrics (one ROC point per threshold)
    from TFMA's binary ConfusionMatrixPlot; None when the evaluation has no such plot."""
    plot = _overall_plot(evaluation_uri, "confusion_matrix_at_thresholds")
    if plot is None or not plot.matrices:
        return None
    points: List[Dict[str, float]] = []
    for m in plot.matrices:
        positives, negatives = m.true_positives + m.false_negatives, m.false_positives + m.true_negatives
        points.append({
            "confidenceThreshold": float(m.threshold),
            "recall": float(m.true_positives / positives) if positives else 0.0,
            "falsePositiveRate": float(m.false_positives / negatives) if negatives else 0.0,
        })
    at = min(plot.matrices, key=lambda m: abs(m.threshold - DECISION_THRESHOLD))
    negative, positive = (list(class_names) + ["0", "1"])[:2] if len(class_names) >= 2 else ("0", "1")
    return {
        "confusionMatrix": {
            "annotationSpecs": [{"displayName": str(negative)}, {"displayName": str(positive)}],
            # rows: actual class, columns: predicted class
            "rows": [{"row": [round(at.true_negatives), round(at.false_positives)]},
                     {"row": [round(at.false_negatives), round(at.true_positives)]}],
        },
        "confidenceMetrics": points,
    }


def multiclass_classification(evaluation_uri: str, class_names: Sequence[str]) -> Optional[Dict[str, Any]]:
    """confusionMatrix (actual x predicted counts, argmax) from TFMA's MultiClassConfusionMatrixPlot."""
    plot = _overall_plot(evaluation_uri, "multi_class_confusion_matrix_at_thresholds")
    if plot is None or not plot.matrices:
        return None
    matrix = min(plot.matrices, key=lambda m: abs(m.threshold))  # threshold 0: argmax
    size = len(class_names)
    rows = [[0] * size for _ in range(size)]
    for entry in matrix.entries:
        if 0 <= entry.actual_class_id < size and 0 <= entry.predicted_class_id < size:
            rows[entry.actual_class_id][entry.predicted_class_id] += round(entry.num_weighted_examples)
    return {"confusionMatrix": {"annotationSpecs": [{"displayName": str(n)} for n in class_names],
                                "rows": [{"row": row} for row in rows]}}


def classification(evaluation_uri: str, class_names: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The system.ClassificationMetrics properties of a classifier's evaluation; None otherwise."""
    if len(class_names) > 2:
        return multiclass_classification(evaluation_uri, class_names)
    return binary_classification(evaluation_uri, class_names)
