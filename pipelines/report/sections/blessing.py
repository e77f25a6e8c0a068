"""The blessing decision: blessed or not, each threshold check per slice it applies to, and the
baseline model it was compared with. (Pushed and registered come from the run outcome.)"""
from __future__ import annotations

from typing import Dict, List

from pipelines import nodes, slices
from pipelines.report.sections.base import RunInputs, Section, describe


def _checks(table: slices.SliceTable) -> List[Dict[str, str]]:
    checks = []
    for threshold in table.thresholds:
        for row in table.rows:
            if not threshold.applies_to(row.key):
                continue
            value = row.candidate.get(threshold.metric)
            base = row.baseline.get(threshold.metric)
            kind = "change" if threshold.kind == "change" else "value"
            failed = any(f.startswith(f"{threshold.metric} {kind}") for f in row.failures)
            shown = slices.fmt(value) if threshold.kind == "value" else (
                f"{slices.fmt_diff(row.diff(threshold.metric))}, {slices.fmt(value)} vs baseline {slices.fmt(base)}")
            result = "fail" if failed or threshold.check(value, base) is False else "pass"
            checks.append({"threshold": threshold.text(), "slice": row.name, "value": shown, "result": result})
    return checks


def build(section: Section, run: RunInputs) -> None:
    blessing = run.output(nodes.EVALUATOR, "blessing")
    section.data["state"] = run.state(nodes.EVALUATOR)
    if blessing is None:
        section.data["decision"] = "not evaluated"
        section.message = (f"The run stopped at {run.failed[0]} before the Evaluator." if run.failed
                           else "The Evaluator did not run.")
        return
    section.data["decision"] = "blessed" if blessing.get("blessed") else "not blessed"
    section.data["baseline_model"] = blessing.get("baseline_model")
    # Which registered version the candidate was compared against (the Baseline step's answer).
    section.data["baseline_version"] = blessing.get("baseline")
    section.data["current_model"] = blessing.get("current_model")
    section.data["checks"] = []
    try:
        table = run.slice_table()
    except Exception as exc:  # the decision itself is still known from the blessing artifact
        section.error = f"could not read the evaluation: {describe(exc)}"
        return
    if table is not None:
        section.data["checks"] = _checks(table)
        section.data["reasons"] = table.reasons
        section.data["has_baseline"] = table.has_baseline
