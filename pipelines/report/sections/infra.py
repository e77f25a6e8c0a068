"""Infra validation: whether the candidate could be served in a fresh process with serving's
imports only, each check of the serving contract, and the latencies at batch 1 and 64 (the
InfraValidator's InfraBlessing and its infra_validation.json)."""
from __future__ import annotations

import json
import os

from pipelines import nodes
from pipelines.report.sections.base import RunInputs, Section

REPORT_FILE = "infra_validation.json"  # components.infra_validator.REPORT_FILE (no TFX import here)


def build(section: Section, run: RunInputs) -> None:
    blessing = run.output(nodes.INFRA_VALIDATOR, "blessing")
    section.data["state"] = run.state(nodes.INFRA_VALIDATOR)
    if blessing is None:
        section.message = run.missing(nodes.INFRA_VALIDATOR)
        return
    blessed = bool(blessing.get("blessed"))
    reason = blessing.get("reason") or ""
    section.data["decision"] = "blessed" if blessed else (
        "skipped" if reason == "not blessed by the Evaluator" else "not blessed")
    section.data["reason"] = reason
    section.data["seconds"] = blessing.get("validation_seconds")
    path = os.path.join(blessing.uri, REPORT_FILE)
    if not os.path.exists(path):
        section.message = f"No {REPORT_FILE} in {blessing.uri}."
        return
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    section.data["checks"] = report.get("checks") or []
    section.data["contract"] = report.get("contract") or {}
    section.data["latency"] = [
        {"batch": int(batch), **stats} for batch, stats in sorted(
            (report.get("latency_ms") or {}).items(), key=lambda kv: int(kv[0]))
    ]
    served = report.get("serving_process") or {}
    section.data["serving"] = {
        "load_seconds": served.get("load_seconds"), "wall_seconds": served.get("wall_seconds"),
        "custom_op_modules": served.get("custom_op_modules") or report.get("custom_op_modules") or [],
        "tensorflow_version": served.get("tensorflow_version"),
    } if served else None
    section.data["sample"] = report.get("sample")
    section.data["max_abs_diff"] = report.get("max_abs_diff")
    section.data["uri"] = blessing.uri
