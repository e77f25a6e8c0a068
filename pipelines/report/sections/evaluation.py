"""Evaluation per slice: every metric TFMA wrote per slice, the change vs the baseline model, the
threshold result, and the chart of the threshold metric."""
from __future__ import annotations

from components import evaluation
from pipelines import nodes, slices
from pipelines.report.charts import slice_chart
from pipelines.report.sections.base import RunInputs, Section, describe


def _cell(row: slices.SliceRow, metric: str, has_baseline: bool) -> dict:
    diff = row.diff(metric) if has_baseline else None
    shown = slices.fmt_diff(diff) if diff is not None else ""
    return {"value": slices.fmt(row.candidate.get(metric)), "diff": shown,
            "diff_class": "" if diff is None or shown == "±0" else ("up" if diff > 0 else "down")}


def build(section: Section, run: RunInputs) -> None:
    try:
        table = run.slice_table()
    except Exception as exc:
        section.error = f"could not read the evaluation: {describe(exc)}"
        return
    if table is None:
        section.message = run.missing(nodes.EVALUATOR)
        return
    metric = table.default_metric(run.preferred_metric)
    section.data["metric"] = metric
    section.data["metrics"] = table.metrics
    section.data["has_baseline"] = table.has_baseline
    section.data["thresholds"] = [t.text() for t in table.thresholds]
    section.data["uri"] = table.evaluation_uri
    if metric:
        section.data["image"] = slice_chart(table, metric)
    section.data["rows"] = [
        {"name": row.name, "count": slices.fmt(row.example_count, 0), "status": row.status, "group": row.columns,
         "cells": [_cell(row, name, table.has_baseline) for name in table.metrics]}
        for row in table.rows
    ]
    section.data["confusion"] = confusion_matrix(table.evaluation_uri, run)


def confusion_matrix(evaluation_uri: str, run: RunInputs):
    """The overall multi-class confusion matrix (rows: actual class, columns: predicted), with the
    task's class names and each row's recall; None when the evaluation computed none."""
    names = [str(c) for c in (getattr(run.task_config, "class_names", None) or ())]
    counts = evaluation.load_confusion_matrix(evaluation_uri, len(names))
    if not counts:
        return None
    names += [f"class {i}" for i in range(len(names), len(counts))]
    rows = []
    for i, row in enumerate(counts):
        total = sum(row)
        rows.append({"name": names[i], "cells": [slices.fmt(v, 0) for v in row],
                     "diagonal": i, "recall": slices.fmt(row[i] / total) if total else "n/a"})
    return {"classes": names, "rows": rows}
