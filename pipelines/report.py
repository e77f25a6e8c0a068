"""A self-contained HTML report of one pipeline run: data, validation, tuning, training, slices and
the blessing decision. Everything is read back from the run's artifacts (via ML Metadata), so it
works for every task; images are inline PNGs and the page loads nothing from anywhere.

Written to <home>/reports/<task>/<run id with ':' replaced by '-'>/report.html after each
`mlops run`; `mlops report TASK [--run RUN]` regenerates it.
"""
from __future__ import annotations

import datetime
import glob
import json
import math
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from pipelines import inspect_runs, lineage, slices
from pipelines.local_runner import LocalLayout

REPORT_FILE = "report.html"


def report_path(home: Union[str, Path], task: str, run_id: str) -> Path:
    return inspect_runs.report_dir(Path(home), task, run_id) / REPORT_FILE


# --- Sections: each reads one kind of artifact and degrades to a message ------------------------


@dataclass
class Section:
    id: str
    title: str
    data: Dict[str, Any] = field(default_factory=dict)
    message: Optional[str] = None  # shown instead of (or above) the data, e.g. "no tuner"
    error: Optional[str] = None  # the section could not be read


def _section(id: str, title: str, build, *args) -> Section:
    section = Section(id, title)
    try:
        build(section, *args)
    except Exception as exc:  # one unreadable artifact must not cost the rest of the report
        section.error = f"{type(exc).__name__}: {exc}"
        section.data["traceback"] = traceback.format_exc(limit=3)
    return section


def _node_ids():
    from pipelines import factory

    return factory


def _output(record: lineage.RunRecord, node: str, key: str) -> Optional[lineage.ArtifactRecord]:
    execution = record.nodes.get(node)
    return execution.output(key) if execution else None


def _node_state(record: lineage.RunRecord, node: str) -> str:
    execution = record.nodes.get(node)
    return execution.state if execution else "absent"


def _missing(record: lineage.RunRecord, node: str) -> str:
    """Why `node` has no output in this run."""
    if node in record.nodes:
        return f"{node} has no output in this run ({record.nodes[node].state})."
    failed = [n.node_id for n in record.nodes.values() if n.state == "failed"]
    if failed:
        return f"{node} did not run: the run stopped at {failed[0]}."
    return f"{node} did not run in this run."


def _splits(uri: str) -> List[str]:
    return sorted(
        (os.path.basename(p)[len("Split-"):] for p in glob.glob(os.path.join(uri, "Split-*"))),
        key=lambda s: (s != "train", s),
    )


# Dataset statistics -------------------------------------------------------------------------------


def _sparkline(buckets) -> str:
    """A tiny inline SVG histogram (no external resources)."""
    counts = [max(0.0, b.sample_count) for b in buckets]
    if not counts or max(counts) <= 0:
        return ""
    width, height, n = 90, 20, len(counts)
    bar = width / n
    top = max(counts)
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - c / top * height:.1f}" width="{max(bar - 1, 1):.1f}" '
        f'height="{c / top * height:.1f}"/>'
        for i, c in enumerate(counts)
    )
    return f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{rects}</svg>'


def _feature_name(feature) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def _split_statistics(path: str) -> Dict[str, Any]:
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import statistics_pb2

    stats = tfdv.load_stats_binary(path)
    dataset = stats.datasets[0]
    numeric, categorical, other = [], [], []
    for feature in dataset.features:
        name = _feature_name(feature)
        kind = feature.WhichOneof("stats")
        if kind == "num_stats":
            s = feature.num_stats
            common = s.common_stats
            standard = [h for h in s.histograms if h.type == statistics_pb2.Histogram.STANDARD]
            numeric.append({
                "name": name,
                "type": statistics_pb2.FeatureNameStatistics.Type.Name(feature.type).lower(),
                "count": common.num_non_missing,
                "missing": common.num_missing,
                "missing_pct": 100.0 * common.num_missing / max(1, dataset.num_examples),
                "mean": s.mean, "std": s.std_dev, "min": s.min, "median": s.median, "max": s.max,
                "zeros_pct": 100.0 * s.num_zeros / max(1, common.num_non_missing),
                "spark": _sparkline(standard[0].buckets) if standard else "",
            })
        elif kind == "string_stats":
            s = feature.string_stats
            common = s.common_stats
            total = max(1, common.num_non_missing)
            categorical.append({
                "name": name,
                "count": common.num_non_missing,
                "missing": common.num_missing,
                "missing_pct": 100.0 * common.num_missing / max(1, dataset.num_examples),
                "unique": s.unique,
                "top": [(v.value, int(v.frequency), 100.0 * v.frequency / total) for v in s.top_values[:3]],
                "avg_length": s.avg_length,
            })
        else:
            other.append({"name": name, "kind": kind or "unknown"})
    return {"examples": dataset.num_examples, "numeric": numeric, "categorical": categorical, "other": other}


def _build_statistics(section: Section, record: lineage.RunRecord, factory) -> None:
    artifact = _output(record, factory.STATISTICS_GEN, "statistics")
    if artifact is None:
        section.message = _missing(record, factory.STATISTICS_GEN)
        return
    section.data["uri"] = artifact.uri
    section.data["splits"] = []
    for split in _splits(artifact.uri):
        path = os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(path):
            section.data["splits"].append({"name": split, **_split_statistics(path)})
    if not section.data["splits"]:
        section.message = f"no statistics files under {artifact.uri}"


# Anomalies ----------------------------------------------------------------------------------------


def _anomaly_rows(anomalies, split: str) -> List[Dict[str, str]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    rows = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        rows.append({
            "split": split,
            "feature": feature,
            "severity": anomalies_pb2.AnomalyInfo.Severity.Name(info.severity).lower(),
            "short": info.short_description,
            "detail": info.description or "; ".join(r.description for r in info.reason),
        })
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        rows.append({"split": split, "feature": "(dataset)", "severity": "",
                     "short": info.short_description, "detail": info.description})
    return rows


def _build_anomalies(section: Section, record: lineage.RunRecord, factory, metadata_path=None) -> None:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    rows: List[Dict[str, str]] = []
    artifact = _output(record, factory.EXAMPLE_VALIDATOR, "anomalies")
    state = _node_state(record, factory.EXAMPLE_VALIDATOR)
    if artifact is not None:
        section.data["uri"] = artifact.uri
        splits = _splits(artifact.uri)
        for split in splits:
            path = os.path.join(artifact.uri, f"Split-{split}", "SchemaDiff.pb")
            if os.path.exists(path):
                anomalies = anomalies_pb2.Anomalies()
                with open(path, "rb") as f:
                    anomalies.ParseFromString(f.read())
                rows += _anomaly_rows(anomalies, split)
        section.data["splits"] = splits
        section.message = None if rows else f"No anomalies: every split ({', '.join(splits)}) matches the schema."
    else:
        # A failed ExampleValidator keeps no output; validate the statistics against the schema
        # again to show what it found.
        statistics = _output(record, factory.STATISTICS_GEN, "statistics")
        schema = _output(record, factory.SCHEMA_GEN, "schema")
        if statistics is None or schema is None:
            section.message = _missing(record, factory.EXAMPLE_VALIDATOR)
            return
        import tensorflow_data_validation as tfdv

        schema_proto = tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt"))
        # Drift is checked against the span accepted before this run, as the validator did.
        from components.strict_example_validator import previous_accepted_statistics

        found = previous_accepted_statistics(metadata_path, record.pipeline, factory.EXAMPLE_VALIDATOR,
                                             before_ms=record.start_ms) if metadata_path else None
        for split in _splits(statistics.uri):
            stats = tfdv.load_stats_binary(os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb"))
            previous = None
            baseline_file = os.path.join(found[0].uri, f"Split-{split}", "FeatureStats.pb") if found else None
            if baseline_file and os.path.exists(baseline_file):
                previous = tfdv.load_stats_binary(baseline_file)
            rows += _anomaly_rows(tfdv.validate_statistics(stats, schema_proto, previous_statistics=previous), split)
        section.message = (
            f"{factory.EXAMPLE_VALIDATOR} {state} and kept no output; these anomalies were recomputed from "
            f"the run's statistics and schema."
            + ("" if rows else " None found.")
        )
    section.data["rows"] = rows
    section.data["state"] = state


# Tuner --------------------------------------------------------------------------------------------


def _space_text(entry: Dict[str, Any]) -> str:
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


def _build_tuner(section: Section, record: lineage.RunRecord, factory) -> None:
    if factory.TUNER not in record.nodes and not any(n.state == "failed" for n in record.nodes.values()):
        section.message = "No tuner: this pipeline has no Tuner (the Trainer used the task's hyperparameters)."
        return
    best = _output(record, factory.TUNER, "best_hyperparameters")
    if best is None:
        section.message = _missing(record, factory.TUNER)
        return
    files = glob.glob(os.path.join(best.uri, "*.txt")) + glob.glob(os.path.join(best.uri, "*.json"))
    values, space = {}, {}
    if files:
        with open(files[0]) as f:
            config = json.load(f)
        values = config.get("values", config) if isinstance(config, dict) else {}
        for entry in (config.get("space", []) if isinstance(config, dict) else []):
            name = entry.get("config", {}).get("name")
            if name:
                space[name] = _space_text(entry)
    section.data["best"] = [
        {"name": k, "value": _fmt_value(v), "space": space.get(k, "")} for k, v in values.items()
    ]
    section.data["uri"] = best.uri

    trials = _trials_from_files(best.uri) or _trials_from_results(record, factory)
    names = []
    for trial in trials:
        for name in trial["values"]:
            if name not in names:
                names.append(name)
    for trial in trials:
        trial["is_best"] = bool(values) and all(trial["values"].get(k) == v for k, v in values.items())
        trial["cells"] = [_fmt_value(trial["values"].get(n)) for n in names]
    section.data["trial_names"] = names
    section.data["trials"] = trials
    if not trials:
        section.data["no_trials"] = "No trial records found (the Tuner's working directory is temporary)."


def _trials_from_results(record, factory) -> List[Dict[str, Any]]:
    """TFX's tuner_results.json: one entry per trial with its score and hyperparameters."""
    results = _output(record, factory.TUNER, "tuner_results")
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


def _trials_from_files(best_uri: str) -> List[Dict[str, Any]]:
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


def _fmt_stat(value) -> str:
    """Dataset statistics: 19,868 / 2,387.3 / 48.4 / 0.153."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}" if abs(value) >= 10000 or float(value).is_integer() else f"{value:,.1f}"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4g}"


def _fmt_value(value) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return "—" if value is None else str(value)


# Training curves ----------------------------------------------------------------------------------


def read_scalars(log_dir: str) -> Dict[str, Dict[str, List[tuple]]]:
    """tag -> series (sub-directory, e.g. 'train' / 'validation') -> [(step, value)] from the
    TensorBoard event files under log_dir."""
    import tensorflow as tf

    result: Dict[str, Dict[str, List[tuple]]] = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True)):
        series = os.path.relpath(os.path.dirname(path), log_dir)
        series = "run" if series == "." else series
        for raw in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    number = float(value.simple_value)
                elif kind == "tensor":
                    array = tf.make_ndarray(value.tensor)
                    if array.size != 1 or array.dtype.kind not in "fiu":
                        continue
                    number = float(array.reshape(()))
                else:
                    continue
                result.setdefault(value.tag, {}).setdefault(series, []).append((event.step, number))
    for by_series in result.values():
        for points in by_series.values():
            points.sort()
    return result


def training_figure(scalars: Dict[str, Dict[str, List[tuple]]]):
    """One panel per per-epoch metric, a line per series (train vs validation)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    tags = [t for t in scalars if t.startswith("epoch_")] or list(scalars)

    def constant_single(tag):
        series = scalars[tag]
        return len(series) == 1 and len({round(v, 12) for _, v in next(iter(series.values()))}) <= 1

    tags = [t for t in tags if not constant_single(t)]
    if not tags:
        return None, []
    tags.sort(key=lambda t: (not t.endswith("loss"), "learning_rate" in t, t))
    columns = min(3, len(tags))
    rows = math.ceil(len(tags) / columns)
    fig = Figure(figsize=(4.1 * columns, 3.0 * rows), dpi=100)
    palette = {"train": "#4f7cac", "validation": "#e07b39"}
    for i, tag in enumerate(tags):
        ax = fig.add_subplot(rows, columns, i + 1)
        epoch_based = tag.startswith("epoch_")
        for name, points in sorted(scalars[tag].items()):
            xs = [step + 1 if epoch_based else step for step, _ in points]
            ax.plot(xs, [v for _, v in points], marker="o", markersize=3, linewidth=1.6,
                    label=name, color=palette.get(name))
        validation = scalars[tag].get("validation")
        if tag.endswith("loss") and validation and len(validation) > 1:
            step, value = min(validation, key=lambda p: p[1])
            ax.axvline(step + 1 if epoch_based else step, color="#888888", linestyle=":", linewidth=1)
            ax.annotate("lowest validation loss", xy=(step + 1 if epoch_based else step, value),
                        xytext=(4, 10), textcoords="offset points", fontsize=7, color="#555555")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(tag[len("epoch_"):] if epoch_based else tag, fontsize=10)
        ax.set_xlabel("epoch" if epoch_based else "step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(color="#e5e5e5")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig, tags


def _build_training(section: Section, record: lineage.RunRecord, factory) -> None:
    run = _output(record, factory.TRAINER, "model_run")
    if run is None:
        section.message = _missing(record, factory.TRAINER)
        return
    section.data["uri"] = run.uri
    scalars = read_scalars(run.uri)
    fig, tags = training_figure(scalars)
    if fig is None:
        section.message = f"no TensorBoard scalars under {run.uri}"
        return
    image = slices.png_data_uri(slices.figure_png(fig))
    last = []
    for tag in tags:
        cells = {name: points[-1][1] for name, points in scalars[tag].items() if points}
        epochs = max(len(points) for points in scalars[tag].values())
        last.append({"tag": tag[len("epoch_"):] if tag.startswith("epoch_") else tag,
                     "values": {k: _fmt_value(v) for k, v in sorted(cells.items())}, "epochs": epochs})
    section.data["last"] = last
    section.data["series"] = sorted({name for tag in tags for name in scalars[tag]})
    section.data["epochs"] = max((row["epochs"] for row in last), default=0)
    section.data["image"] = image


# Slices and blessing ------------------------------------------------------------------------------


def _build_slices(section: Section, table: Optional[slices.SliceTable], preferred: Optional[str], missing: str) -> None:
    if table is None:
        section.message = missing
        return
    metric = table.default_metric(preferred)
    section.data["metric"] = metric
    section.data["metrics"] = table.metrics
    section.data["has_baseline"] = table.has_baseline
    section.data["thresholds"] = [t.text() for t in table.thresholds]
    section.data["uri"] = table.evaluation_uri
    if metric:
        section.data["image"] = slices.png_data_uri(slices.figure_png(slices.slice_figure(table, metric)))
    rows = []
    for row in table.rows:
        cells = []
        for name in table.metrics:
            diff = row.diff(name) if table.has_baseline else None
            cells.append({"value": slices.fmt(row.candidate.get(name)),
                          "diff": slices.fmt_diff(diff) if diff is not None else "",
                          "diff_class": "" if diff is None or slices.fmt_diff(diff) == "±0" else ("up" if diff > 0 else "down")})
        rows.append({"name": row.name, "count": slices.fmt(row.example_count, 0), "cells": cells,
                     "status": row.status, "group": row.columns})
    section.data["rows"] = rows


def _build_blessing(section: Section, record: lineage.RunRecord, table: Optional[slices.SliceTable], factory) -> None:
    blessing = _output(record, factory.EVALUATOR, "blessing")
    section.data["state"] = _node_state(record, factory.EVALUATOR)
    if blessing is None:
        failed = [n.node_id for n in record.nodes.values() if n.state == "failed"]
        section.data["decision"] = "not evaluated"
        section.message = (f"The run stopped at {failed[0]} before the Evaluator." if failed
                           else "The Evaluator did not run.")
        return
    blessed = bool(blessing.get("blessed"))
    section.data["decision"] = "blessed" if blessed else "not blessed"
    section.data["baseline_model"] = blessing.get("baseline_model")
    section.data["current_model"] = blessing.get("current_model")
    checks = []
    if table is not None:
        for threshold in table.thresholds:
            for row in table.rows:
                if not threshold.applies_to(row.key):
                    continue
                value = row.candidate.get(threshold.metric)
                base = row.baseline.get(threshold.metric)
                failed = any(f.startswith(f"{threshold.metric} {'change' if threshold.kind == 'change' else 'value'}")
                             for f in row.failures)
                shown = slices.fmt(value) if threshold.kind == "value" else (
                    f"{slices.fmt_diff(row.diff(threshold.metric))}, {slices.fmt(value)} vs baseline {slices.fmt(base)}")
                checks.append({"threshold": threshold.text(), "slice": row.name, "value": shown,
                               "result": "fail" if failed else ("pass" if threshold.check(value, base) is not False else "fail")})
        section.data["reasons"] = table.reasons
        section.data["has_baseline"] = table.has_baseline
    section.data["checks"] = checks


# --- The report -----------------------------------------------------------------------------------


def build_context(record: lineage.RunRecord, task: str, task_config=None, metadata_path=None) -> Dict[str, Any]:
    factory = _node_ids()
    row = inspect_runs.run_row(task, record)
    summary_nodes = []
    for node_id in inspect_runs.columns_for([row]):
        node = record.nodes[node_id]
        summary_nodes.append({"id": node_id, "state": node.state, "seconds": node.seconds,
                              "symbol": inspect_runs.STATE_SYMBOLS.get(node.state, "?")})

    examples = _output(record, factory.EXAMPLE_GEN, "examples")
    data_version = None
    if examples is not None and examples.get("dvc_data_md5"):
        data_version = examples.get("dvc_data_md5") + (" (dirty)" if examples.get("dvc_data_dirty") else "")

    evaluation = _output(record, factory.EVALUATOR, "evaluation")
    table = None
    table_error = None
    if evaluation is not None:
        try:
            table = slices.load_slice_table(evaluation.uri)
        except Exception as exc:
            table_error = f"{type(exc).__name__}: {exc}"
    preferred = getattr(getattr(task_config, "eval", None), "threshold_metric", None)

    sections = [
        _section("statistics", "Dataset statistics", _build_statistics, record, factory),
        _section("anomalies", "Data validation (anomalies)", _build_anomalies, record, factory, metadata_path),
        _section("tuner", "Hyperparameter tuning", _build_tuner, record, factory),
        _section("training", "Training curves", _build_training, record, factory),
        _section("slices", "Evaluation per slice", _build_slices, table, preferred,
                 _missing(record, factory.EVALUATOR)),
        _section("blessing", "Blessing decision", _build_blessing, record, table, factory),
    ]
    if table_error:
        for section in sections[-2:]:
            section.error = section.error or f"could not read the evaluation: {table_error}"

    headline = None
    if table is not None and table.overall is not None:
        metric = table.default_metric(preferred)
        if metric:
            headline = {"metric": metric, "value": slices.fmt(table.overall.candidate.get(metric))}

    failed = row.failed
    if failed:
        status = ("failed", f"failed at {failed[0]}")
    elif row.blessed:
        status = ("blessed", "blessed")
    elif row.blessed is False:
        status = ("not-blessed", "not blessed")
    else:
        status = ("unknown", "not evaluated")
    return {
        "task": task,
        "run": row,
        "start": row.start.strftime("%Y-%m-%d %H:%M:%S") if row.start else "—",
        "duration": inspect_runs.format_duration(row.seconds),
        "status": status,
        "nodes": summary_nodes,
        "data_version": data_version,
        "headline": headline,
        "examples": {s["name"]: s["examples"] for s in sections[0].data.get("splits", [])},
        "sections": {s.id: s for s in sections},
        "order": [s.id for s in sections],
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "fmt": slices.fmt,
        "fmt_value": _fmt_value,
        "fmt_stat": _fmt_stat,
        "format_duration": inspect_runs.format_duration,
        "legend": inspect_runs.LEGEND,
    }


def render(context: Dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(**context)


def write_report(home: Union[LocalLayout, str, Path], task: str, run_id: Optional[str] = None, *,
                 store=None, task_config=None) -> Path:
    """Write report.html for one run of `task` (default: the newest) and return its path."""
    layout = home if isinstance(home, LocalLayout) else LocalLayout.resolve(str(home))
    store = store or inspect_runs.open_store(layout)
    record = inspect_runs.resolve_run(store, task, run_id or "latest")
    if task_config is None:
        try:
            from pipelines.config import load_task

            task_config = load_task(task)
        except Exception:
            task_config = None  # a task no longer registered still gets a report
    html_text = render(build_context(record, task, task_config, metadata_path=str(layout.metadata_path)))
    path = report_path(layout.home, task, record.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, path)
    return path


TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ task }} · run {{ run.run_id }}</title>
<style>
:root { --ink: #1f2328; --muted: #646b73; --line: #d8dee4; --soft: #f6f8fa; --pass: #1a7f37;
        --fail: #c62828; --warn: #9a6700; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header .sub { color: var(--muted); font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 8px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin: 18px 0 8px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; background: var(--soft); }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 18px; font-weight: 600; margin-top: 2px; word-break: break-word; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600; font-size: 13px; color: #fff; }
.badge.blessed, .badge.pass { background: var(--pass); }
.badge.not-blessed, .badge.failed, .badge.fail { background: var(--fail); }
.badge.unknown, .badge.none { background: #8c959f; }
nav { margin: 14px 0 0; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line); padding: 6px 8px; white-space: nowrap; }
td { border-bottom: 1px solid #eaeef2; padding: 5px 8px; vertical-align: top; }
table.compact { width: auto; min-width: 50%; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group-start td { border-top: 2px solid var(--line); }
tr.best td { background: #eef7ee; }
.pipeline { display: flex; flex-wrap: wrap; gap: 6px; margin: 10px 0; }
.node { border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; font-size: 12.5px; background: #fff; }
.node.complete { border-color: #9fd3ad; background: #f0faf2; }
.node.cached { border-color: #b6c8e4; background: #f1f6fd; }
.node.failed { border-color: #f0a8a8; background: #fdf0f0; }
.node .t { color: var(--muted); margin-left: 4px; }
.msg { padding: 10px 14px; border-radius: 6px; background: var(--soft); border: 1px solid var(--line); margin: 8px 0; }
.msg.ok { background: #f0faf2; border-color: #9fd3ad; }
.msg.bad { background: #fdf0f0; border-color: #f0a8a8; }
.msg.warn { background: #fff8e5; border-color: #e8cf82; }
.error { color: var(--fail); }
img.chart { max-width: 100%; height: auto; border: 1px solid #eaeef2; border-radius: 6px; margin: 6px 0; }
svg.spark rect { fill: #4f7cac; }
.diff { display: block; font-size: 11px; color: var(--muted); }
.diff.up { color: var(--pass); } .diff.down { color: var(--fail); }
.top { white-space: nowrap; }
details > summary { cursor: pointer; font-weight: 600; margin: 12px 0 6px; }
.pass-t { color: var(--pass); font-weight: 600; } .fail-t { color: var(--fail); font-weight: 600; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 10px; }
</style>
</head>
<body>
<main>
<header>
  <h1>{{ task }} <span class="badge {{ status[0] }}">{{ status[1] }}</span></h1>
  <div class="sub">run {{ run.run_id }}</div>
  <div class="cards">
    <div class="card"><div class="k">Started</div><div class="v">{{ start }}</div></div>
    <div class="card"><div class="k">Duration</div><div class="v">{{ duration }}</div></div>
    {% if headline %}<div class="card"><div class="k">{{ headline.metric }} (overall)</div><div class="v">{{ headline.value }}</div></div>{% endif %}
    {% for split, n in examples.items() %}<div class="card"><div class="k">{{ split }} examples</div><div class="v">{{ "{:,}".format(n) }}</div></div>{% endfor %}
    <div class="card"><div class="k">Pushed</div><div class="v">{% if run.pushed %}yes{% elif run.pushed is none %}—{% else %}no{% endif %}</div></div>
    <div class="card"><div class="k">Registered</div><div class="v">{{ run.registered or "—" }}</div></div>
  </div>
  {% set b = sections.blessing %}
  {% if status[0] == "failed" %}
  <div class="msg bad"><strong>The run failed at {{ run.failed|join(", ") }}.</strong>
  {% if sections.anomalies.data.get("rows") %}{{ sections.anomalies.data.rows|length }} data anomal{{ "y" if sections.anomalies.data.rows|length == 1 else "ies" }} (see <a href="#anomalies">Data validation</a>).{% endif %}
  Components after it did not run; the sections below show what was produced.</div>
  {% elif b.data.get("reasons") %}
  <div class="msg bad"><strong>Not blessed:</strong> {{ b.data.reasons|join("; ") }}</div>
  {% elif status[0] == "blessed" %}
  <div class="msg ok"><strong>Blessed:</strong> {% for c in b.data.get("checks", []) %}{{ c.threshold }} ({{ c.value }}){% if not loop.last %}; {% endif %}{% else %}no thresholds configured{% endfor %}.</div>
  {% elif b.message %}
  <div class="msg warn">{{ b.message }}</div>
  {% endif %}
  {% if data_version %}<div class="muted">data: DVC md5 <code>{{ data_version }}</code></div>{% endif %}
  {% if run.pushed_path %}<div class="muted">pushed to <code>{{ run.pushed_path }}</code></div>{% endif %}
  <div class="pipeline">
  {% for node in nodes %}<span class="node {{ node.state }}">{{ node.symbol }} {{ node.id }}<span class="t">{% if node.state == "cached" %}cached{% else %}{{ format_duration(node.seconds) }}{% endif %}</span></span>{% endfor %}
  </div>
  <nav>{% for id in order %}<a href="#{{ id }}">{{ sections[id].title }}</a>{% endfor %}</nav>
</header>

{% macro section_head(s) %}
<h2 id="{{ s.id }}">{{ s.title }}</h2>
{% if s.error %}<div class="msg bad error">Could not read this part of the run: {{ s.error }}</div>{% endif %}
{% endmacro %}

{% set s = sections.statistics %}
{{ section_head(s) }}
{% if s.message %}<div class="msg">{{ s.message }}</div>{% endif %}
{% for split in s.data.get("splits", []) %}
<details {% if loop.first %}open{% endif %}>
<summary>{{ split.name }} split — {{ "{:,}".format(split.examples) }} examples</summary>
{% if split.numeric %}
<h3>Numeric features</h3>
<table>
<tr><th>feature</th><th class="num">count</th><th class="num">missing</th><th class="num">mean</th><th class="num">std</th><th class="num">min</th><th class="num">median</th><th class="num">max</th><th class="num">zeros</th><th>distribution</th></tr>
{% for f in split.numeric %}
<tr><td>{{ f.name }}</td><td class="num">{{ "{:,}".format(f.count) }}</td><td class="num">{{ f.missing }}{% if f.missing %} ({{ "%.1f"|format(f.missing_pct) }}%){% endif %}</td>
<td class="num">{{ fmt_stat(f.mean) }}</td><td class="num">{{ fmt_stat(f.std) }}</td><td class="num">{{ fmt_stat(f.min) }}</td><td class="num">{{ fmt_stat(f.median) }}</td><td class="num">{{ fmt_stat(f.max) }}</td>
<td class="num">{{ "%.1f"|format(f.zeros_pct) }}%</td><td>{{ f.spark|safe }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if split.categorical %}
<h3>Categorical features</h3>
<table>
<tr><th>feature</th><th class="num">count</th><th class="num">missing</th><th class="num">unique</th><th>top values</th></tr>
{% for f in split.categorical %}
<tr><td>{{ f.name }}</td><td class="num">{{ "{:,}".format(f.count) }}</td><td class="num">{{ f.missing }}{% if f.missing %} ({{ "%.1f"|format(f.missing_pct) }}%){% endif %}</td><td class="num">{{ f.unique }}</td>
<td>{% for value, n, pct in f.top %}<span class="top">{{ value }} <span class="muted">{{ n }} ({{ "%.0f"|format(pct) }}%)</span></span>{% if not loop.last %} · {% endif %}{% endfor %}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if split.other %}<p class="muted">Other features: {% for f in split.other %}{{ f.name }} ({{ f.kind }}){% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
</details>
{% endfor %}

{% set s = sections.anomalies %}
{{ section_head(s) }}
{% if s.message %}<div class="msg {% if s.data.get('rows') %}warn{% elif not s.error %}ok{% endif %}">{{ s.message }}</div>{% endif %}
{% if s.data.get("rows") %}
<table>
<tr><th>split</th><th>feature</th><th>severity</th><th>anomaly</th><th>details</th></tr>
{% for a in s.data.rows %}<tr><td>{{ a.split }}</td><td>{{ a.feature }}</td><td>{{ a.severity }}</td><td>{{ a.short }}</td><td>{{ a.detail }}</td></tr>{% endfor %}
</table>
{% endif %}

{% set s = sections.tuner %}
{{ section_head(s) }}
{% if s.message %}<div class="msg">{{ s.message }}</div>{% endif %}
{% if s.data.get("best") %}
<h3>Best hyperparameters</h3>
<table>
<tr><th>hyperparameter</th><th>best value</th><th>search space</th></tr>
{% for h in s.data.best %}<tr><td>{{ h.name }}</td><td class="mono">{{ h.value }}</td><td class="muted">{{ h.space }}</td></tr>{% endfor %}
</table>
{% endif %}
{% if s.data.get("trials") %}
<h3>Trials ({{ s.data.trials|length }})</h3>
<table>
<tr><th>trial</th><th class="num">score</th>{% if s.data.trials[0].status %}<th>status</th>{% endif %}{% for n in s.data.trial_names %}<th>{{ n }}</th>{% endfor %}</tr>
{% for t in s.data.trials %}<tr class="{% if t.is_best %}best{% endif %}"><td>{{ t.id }}{% if t.is_best %} ★{% endif %}</td><td class="num">{{ fmt_value(t.score) }}</td>{% if s.data.trials[0].status %}<td>{{ t.status }}</td>{% endif %}{% for c in t.cells %}<td class="mono">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="muted">★ = the trial whose hyperparameters the Trainer used. Score is the tuner objective.</p>
{% elif s.data.get("no_trials") %}<p class="muted">{{ s.data.no_trials }}</p>{% endif %}

{% set s = sections.training %}
{{ section_head(s) }}
{% if s.message %}<div class="msg">{{ s.message }}</div>{% endif %}
{% if s.data.get("image") %}
<p class="muted">{{ s.data.epochs }} epochs; series: {{ s.data.series|join(", ") }} (from the TensorBoard logs of the Trainer's ModelRun).</p>
<img class="chart" alt="training curves" src="{{ s.data.image }}">
<table class="compact">
<tr><th>metric (last epoch)</th>{% for name in s.data.series %}<th class="num">{{ name }}</th>{% endfor %}</tr>
{% for row in s.data.last %}<tr><td>{{ row.tag }}</td>{% for name in s.data.series %}<td class="num">{{ row["values"].get(name, "—") }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% endif %}

{% set s = sections.slices %}
{{ section_head(s) }}
{% if s.message %}<div class="msg">{{ s.message }}</div>{% endif %}
{% if s.data.get("rows") %}
<p>Thresholds: {% for t in s.data.thresholds %}<code>{{ t }}</code>{% if not loop.last %}; {% endif %}{% else %}none{% endfor %}.
{% if s.data.has_baseline %}Small numbers under each value: change vs the baseline model.{% else %}<span class="muted">No baseline model (no earlier blessed model), so there is no comparison.</span>{% endif %}</p>
{% if s.data.get("image") %}<img class="chart" alt="{{ s.data.metric }} per slice" src="{{ s.data.image }}">{% endif %}
<table>
<tr><th>slice</th><th class="num">examples</th>{% for m in s.data.metrics %}<th class="num">{{ m }}</th>{% endfor %}<th>threshold</th></tr>
{% set ns = namespace(group=None) %}
{% for r in s.data.rows %}
<tr class="{% if ns.group is not none and r.group != ns.group %}group-start{% endif %}">{% set ns.group = r.group %}
<td>{{ r.name }}</td><td class="num">{{ r.count }}</td>
{% for c in r.cells %}<td class="num">{{ c.value }}{% if c.diff %}<span class="diff {{ c.diff_class }}">{{ c.diff }}</span>{% endif %}</td>{% endfor %}
<td>{% if r.status == "pass" %}<span class="pass-t">pass</span>{% elif r.status == "fail" %}<span class="fail-t">fail</span>{% else %}<span class="muted">—</span>{% endif %}</td></tr>
{% endfor %}
</table>
<p class="muted">Evaluation: <code>{{ s.data.uri }}</code></p>
{% endif %}

{% set s = sections.blessing %}
{{ section_head(s) }}
{% if s.data.get("decision") %}
<p><span class="badge {{ 'blessed' if s.data.decision == 'blessed' else ('not-blessed' if s.data.decision == 'not blessed' else 'unknown') }}">{{ s.data.decision }}</span></p>
{% endif %}
{% if s.message %}<div class="msg">{{ s.message }}</div>{% endif %}
{% if s.data.get("checks") %}
<table>
<tr><th>threshold</th><th>slice</th><th>candidate</th><th>result</th></tr>
{% for c in s.data.checks %}<tr><td><code>{{ c.threshold }}</code></td><td>{{ c.slice }}</td><td class="num">{{ c.value }}</td><td>{% if c.result == "pass" %}<span class="pass-t">pass</span>{% else %}<span class="fail-t">fail</span>{% endif %}</td></tr>{% endfor %}
</table>
{% elif s.data.get("decision") and s.data.decision != "not evaluated" %}<p class="muted">No thresholds were configured; TFMA blesses every candidate.</p>{% endif %}
{% if s.data.get("reasons") %}
<div class="msg bad"><strong>Why not blessed:</strong><ul>{% for r in s.data.reasons %}<li>{{ r }}</li>{% endfor %}</ul></div>
{% elif s.data.get("decision") == "blessed" %}<div class="msg ok">The candidate passed every threshold{% if run.pushed %} and was pushed{% endif %}.</div>{% endif %}
{% if s.data.get("decision") and s.data.decision != "not evaluated" %}
<p>Baseline: {% if s.data.get("has_baseline") and s.data.baseline_model %}<code>{{ s.data.baseline_model }}</code> (the latest blessed model{% if s.data.baseline_model == s.data.current_model %}: the same model as the candidate, e.g. because the Trainer came from cache{% endif %}){% else %}none — the first blessed model of this task has nothing to compare against, so change thresholds did not apply{% endif %}.</p>
<p>Candidate: <code>{{ s.data.current_model or "—" }}</code></p>
{% endif %}
<p>Pushed: {% if run.pushed_path %}<code>{{ run.pushed_path }}</code>{% elif run.pushed is none %}— (the Pusher did not run){% else %}no — only blessed models are pushed{% endif %}.
Registered: {{ run.registered or "— (no Registrar output)" }}.</p>

<footer>
Generated {{ generated }} by <code>mlops report {{ task }} --run {{ run.run_id }}</code>. Everything on this page was read from the run's artifacts via ML Metadata.
<br>{{ legend }}
</footer>
</main>
</body>
</html>
"""
