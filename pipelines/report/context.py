"""Everything the report page shows for one run: the header (decision, data version, per-component
status, headline numbers) and the sections of sections.SECTIONS, as plain data for the templates."""
from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from pipelines import lineage, slices
from pipelines.outcome import RunOutcome, outcome_of
from pipelines.report import sections as report_sections
from pipelines.report.sections import RunInputs, Section
from pipelines.runs.base import LEGEND, STATE_SYMBOLS, columns_for, format_duration


def _status(row: RunOutcome) -> Dict[str, str]:
    """The header badge: kind (its CSS class) and text."""
    if row.failed:
        return {"kind": "failed", "text": f"failed at {row.failed[0]}"}
    if row.blessed:
        return {"kind": "blessed", "text": "blessed"}
    if row.blessed is False:
        return {"kind": "not-blessed", "text": "not blessed"}
    return {"kind": "unknown", "text": "not evaluated"}


def _verdict(status: Dict[str, str], row: RunOutcome, by_id: Dict[str, Section]) -> Optional[Dict[str, Any]]:
    """The one-line explanation under the header: where it failed, why not blessed, or what passed."""
    blessing = by_id.get("blessing")
    blessing_data = blessing.data if blessing else {}
    if status["kind"] == "failed":
        anomalies = by_id.get("anomalies")
        return {"kind": "failed", "nodes": row.failed,
                "anomalies": len(anomalies.data.get("rows") or []) if anomalies else 0}
    if blessing_data.get("reasons"):
        return {"kind": "not-blessed", "reasons": blessing_data["reasons"]}
    if status["kind"] == "blessed":
        return {"kind": "blessed", "checks": blessing_data.get("checks", [])}
    if blessing is not None and blessing.message:
        return {"kind": "note", "message": blessing.message}
    return None


def _headline(run: RunInputs) -> Optional[Dict[str, str]]:
    """The threshold metric on Overall, for a header card."""
    try:
        table = run.slice_table()
    except Exception:  # the slices section shows the error
        return None
    if table is None or table.overall is None:
        return None
    metric = table.default_metric(run.preferred_metric)
    return {"metric": metric, "value": slices.fmt(table.overall.candidate.get(metric))} if metric else None


def _component_nodes(record: lineage.RunRecord, row: RunOutcome) -> List[Dict[str, Any]]:
    found = []
    for node_id in columns_for([row]):
        node = record.nodes[node_id]
        found.append({"id": node_id, "state": node.state, "seconds": node.seconds,
                      "symbol": STATE_SYMBOLS.get(node.state, "?")})
    return found


def build_context(record: lineage.RunRecord, task: str, task_config=None, metadata_path=None) -> Dict[str, Any]:
    """The template context of one run's report (render() turns it into the page)."""
    run = RunInputs(record, task, task_config, metadata_path)
    row = outcome_of(record, task, with_metrics=False)
    built = report_sections.build_sections(run)
    by_id = {s.id: s for s in built}
    status = _status(row)
    statistics = by_id.get("statistics")
    data_version = row.data_md5 + (" (dirty)" if row.data_dirty else "") if row.data_md5 else None
    return {
        "task": task,
        "run": row,
        "start": row.start.strftime("%Y-%m-%d %H:%M:%S") if row.start else "—",
        "duration": format_duration(row.seconds),
        "status": status,
        "verdict": _verdict(status, row, by_id),
        "nodes": _component_nodes(record, row),
        "data_version": data_version,
        "headline": _headline(run),
        "examples": {s["name"]: s["examples"] for s in (statistics.data.get("splits", []) if statistics else [])},
        "sections": by_id,
        "order": [s.id for s in built],
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "legend": LEGEND,
    }
