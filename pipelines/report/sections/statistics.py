"""Dataset statistics per split (StatisticsGen): numeric and categorical features."""
from __future__ import annotations

import os
from typing import Any, Dict

from pipelines import nodes
from pipelines.report.charts import sparkline
from pipelines.report.sections.base import RunInputs, Section, splits


def _feature_name(feature) -> str:
    return ".".join(feature.path.step) if feature.path.step else feature.name


def _numeric(feature, name: str, examples: int) -> Dict[str, Any]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    s = feature.num_stats
    common = s.common_stats
    standard = [h for h in s.histograms if h.type == statistics_pb2.Histogram.STANDARD]
    return {
        "name": name,
        "type": statistics_pb2.FeatureNameStatistics.Type.Name(feature.type).lower(),
        "count": common.num_non_missing,
        "missing": common.num_missing,
        "missing_pct": 100.0 * common.num_missing / max(1, examples),
        "mean": s.mean, "std": s.std_dev, "min": s.min, "median": s.median, "max": s.max,
        "zeros_pct": 100.0 * s.num_zeros / max(1, common.num_non_missing),
        "spark": sparkline([b.sample_count for b in standard[0].buckets]) if standard else None,
    }


def _categorical(feature, name: str, examples: int) -> Dict[str, Any]:
    s = feature.string_stats
    common = s.common_stats
    total = max(1, common.num_non_missing)
    return {
        "name": name,
        "count": common.num_non_missing,
        "missing": common.num_missing,
        "missing_pct": 100.0 * common.num_missing / max(1, examples),
        "unique": s.unique,
        "top": [(v.value, int(v.frequency), 100.0 * v.frequency / total) for v in s.top_values[:3]],
        "avg_length": s.avg_length,
    }


def split_statistics(path: str) -> Dict[str, Any]:
    """Examples and per-feature summaries of one split's FeatureStats.pb."""
    import tensorflow_data_validation as tfdv

    dataset = tfdv.load_stats_binary(path).datasets[0]
    numeric, categorical, other = [], [], []
    for feature in dataset.features:
        name = _feature_name(feature)
        kind = feature.WhichOneof("stats")
        if kind == "num_stats":
            numeric.append(_numeric(feature, name, dataset.num_examples))
        elif kind == "string_stats":
            categorical.append(_categorical(feature, name, dataset.num_examples))
        else:
            other.append({"name": name, "kind": kind or "unknown"})
    return {"examples": dataset.num_examples, "numeric": numeric, "categorical": categorical, "other": other}


def build(section: Section, run: RunInputs) -> None:
    artifact = run.output(nodes.STATISTICS_GEN, "statistics")
    if artifact is None:
        section.message = run.missing(nodes.STATISTICS_GEN)
        return
    section.data["uri"] = artifact.uri
    section.data["splits"] = []
    for split in splits(artifact.uri):
        path = os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(path):
            section.data["splits"].append({"name": split, **split_statistics(path)})
    if not section.data["splits"]:
        section.message = f"no statistics files under {artifact.uri}"
