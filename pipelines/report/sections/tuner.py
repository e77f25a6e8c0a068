"""Hyperparameter tuning: the Tuner's best hyperparameters with their search space, and its trials."""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List

from pipelines import nodes
from pipelines.report.formatting import fmt_value
from pipelines.report.sections.base import RunInputs, Section


def space_text(entry: Dict[str, Any]) -> str:
    """One Keras Tuner search-space entry as text: '32 | 64', '0.0001 … 0.01, log', ..."""
    config = entry.get("config", {})
    kind = entry.get("class_name", "")
    if "values" in config:
        return " | ".join(str(v) for v in config["values"])
    if "min_value" in config:
        text = f"{config['min_value']} … {config['max_value']}"
        if config.get("step"):
            text += f", step {config['step']}"
        if config.get("sampling") and config["sampling"] != "linear":
            text += f", {config['sampling']}"
        return text
    if kind == "Boolean":
        return "true | false"
    if kind == "Fixed":
        return f"fixed {config.get('value')}"
    return kind


def _best(uri: str) -> tuple:
    """(values, search space text per name) from the best_hyperparameters artifact."""
    files = glob.glob(os.path.join(uri, "*.txt")) + glob.glob(os.path.join(uri, "*.json"))
    values, space = {}, {}
    if files:
        with open(files[0]) as f:
            config = json.load(f)
        values = config.get("values", config) if isinstance(config, dict) else {}
        for entry in (config.get("space", []) if isinstance(config, dict) else []):
            name = entry.get("config", {}).get("name")
            if name:
                space[name] = space_text(entry)
    return values, space


def trials_from_results(run: RunInputs) -> List[Dict[str, Any]]:
    """TFX's tuner_results.json: one entry per trial with its score and hyperparameters."""
    results = run.output(nodes.TUNER, "tuner_results")
    if results is None:
        return []
    trials = []
    for path in glob.glob(os.path.join(results.uri, "*.json")):
        with open(path) as f:
            entries = json.load(f)
        for entry in entries if isinstance(entries, list) else []:
            entry = dict(entry)
            trials.append({
                "id": str(entry.pop("trial_id", len(trials))),
                "score": entry.pop("score", None),
                "status": "",
                "values": entry,
            })
    return trials


def trials_from_files(best_uri: str) -> List[Dict[str, Any]]:
    """Keras Tuner trial.json files, when the Tuner's working directory was kept (it is a temporary
    directory under the node's .system/ that TFX's local launcher removes)."""
    node_dir = os.path.dirname(os.path.dirname(best_uri.rstrip("/")))
    trials = []
    for path in sorted(glob.glob(os.path.join(node_dir, ".system", "**", "trial.json"), recursive=True)):
        with open(path) as f:
            trial = json.load(f)
        trials.append({
            "id": str(trial.get("trial_id", "")),
            "score": trial.get("score"),
            "status": str(trial.get("status", "")).lower(),
            "values": trial.get("hyperparameters", {}).get("values", {}),
        })
    return trials


def build(section: Section, run: RunInputs) -> None:
    if nodes.TUNER not in run.record.nodes and not run.failed:
        section.message = "No tuner: this pipeline has no Tuner (the Trainer used the task's hyperparameters)."
        return
    best = run.output(nodes.TUNER, "best_hyperparameters")
    if best is None:
        section.message = run.missing(nodes.TUNER)
        return
    values, space = _best(best.uri)
    section.data["uri"] = best.uri
    section.data["best"] = [{"name": k, "value": fmt_value(v), "space": space.get(k, "")} for k, v in values.items()]

    trials = trials_from_files(best.uri) or trials_from_results(run)
    names: List[str] = []
    for trial in trials:
        names += [name for name in trial["values"] if name not in names]
    for trial in trials:
        trial["is_best"] = bool(values) and all(trial["values"].get(k) == v for k, v in values.items())
        trial["cells"] = [fmt_value(trial["values"].get(n)) for n in names]
    section.data["trial_names"] = names
    section.data["trials"] = trials
    if not trials:
        section.data["no_trials"] = "No trial records found (the Tuner's working directory is temporary)."
