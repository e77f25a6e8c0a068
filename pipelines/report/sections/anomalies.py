"""Data validation: the ExampleValidator's anomalies per split, or, when it failed (it keeps no
output then), the anomalies recomputed from the run's statistics and schema."""
from __future__ import annotations

import os
from typing import Dict, List

from pipelines import nodes
from pipelines.report.sections.base import RunInputs, Section, splits


def anomaly_rows(anomalies, split: str) -> List[Dict[str, str]]:
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


def _recorded(uri: str) -> tuple:
    """Rows of the validator's SchemaDiff.pb files and the splits it checked."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    rows: List[Dict[str, str]] = []
    names = splits(uri)
    for split in names:
        path = os.path.join(uri, f"Split-{split}", "SchemaDiff.pb")
        if os.path.exists(path):
            anomalies = anomalies_pb2.Anomalies()
            with open(path, "rb") as f:
                anomalies.ParseFromString(f.read())
            rows += anomaly_rows(anomalies, split)
    return rows, names


def _recomputed(run: RunInputs, statistics_uri: str, schema_uri: str) -> List[Dict[str, str]]:
    """Validate the statistics against the schema again, drift against the run's baseline
    statistics (the data the baseline model was trained on), as the validator did."""
    import tensorflow_data_validation as tfdv

    from components.strict_example_validator import DRIFT_SPLIT

    schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
    baseline = run.output(nodes.BASELINE, "statistics")
    rows: List[Dict[str, str]] = []
    for split in splits(statistics_uri):
        stats = tfdv.load_stats_binary(os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb"))
        previous = None
        baseline_file = (os.path.join(baseline.uri, f"Split-{split}", "FeatureStats.pb")
                         if baseline and split == DRIFT_SPLIT else None)
        if baseline_file and os.path.exists(baseline_file):
            previous = tfdv.load_stats_binary(baseline_file)
        rows += anomaly_rows(tfdv.validate_statistics(stats, schema, previous_statistics=previous), split)
    return rows


def build(section: Section, run: RunInputs) -> None:
    artifact = run.output(nodes.EXAMPLE_VALIDATOR, "anomalies")
    state = run.state(nodes.EXAMPLE_VALIDATOR)
    section.data["state"] = state
    if artifact is not None:
        section.data["uri"] = artifact.uri
        rows, names = _recorded(artifact.uri)
        section.data["splits"] = names
        section.message = None if rows else f"No anomalies: every split ({', '.join(names)}) matches the schema."
    else:
        statistics = run.output(nodes.STATISTICS_GEN, "statistics")
        schema = run.output(nodes.SCHEMA_GEN, "schema")
        if statistics is None or schema is None:
            section.message = run.missing(nodes.EXAMPLE_VALIDATOR)
            return
        rows = _recomputed(run, statistics.uri, schema.uri)
        section.message = (
            f"{nodes.EXAMPLE_VALIDATOR} {state} and kept no output; these anomalies were recomputed from "
            f"the run's statistics and schema." + ("" if rows else " None found.")
        )
    section.data["rows"] = rows
