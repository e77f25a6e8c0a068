"""What the run summary step reads and writes: its inputs (the report's artifacts, by the node
and output they come from) and its outputs (the types the Kubeflow UI renders)."""
from __future__ import annotations

from typing import Mapping, Tuple

from tfx import types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components import ui_artifacts
from pipelines import nodes
from pipelines.runs.base import READ_BACK

# input key -> (node id, output key) of the artifact it carries
INPUTS: Mapping[str, Tuple[str, str]] = {
    "evaluation": (nodes.EVALUATOR, "evaluation"),
    "blessing": (nodes.EVALUATOR, "blessing"),
    "statistics": (nodes.STATISTICS_GEN, "statistics"),
    "schema": (nodes.SCHEMA_GEN, "schema"),
    "anomalies": (nodes.EXAMPLE_VALIDATOR, "anomalies"),
    "baseline_statistics": (nodes.BASELINE, "statistics"),
    "best_hyperparameters": (nodes.TUNER, "best_hyperparameters"),
    "tuner_results": (nodes.TUNER, "tuner_results"),
    "model_run": (nodes.TRAINER, "model_run"),
}
assert set(INPUTS.values()) <= READ_BACK, "the summary reads only what the report reads"
REQUIRED = ("evaluation", "blessing")
INPUT_TYPES = {
    "evaluation": standard_artifacts.ModelEvaluation, "blessing": standard_artifacts.ModelBlessing,
    "statistics": standard_artifacts.ExampleStatistics, "schema": standard_artifacts.Schema,
    "anomalies": standard_artifacts.ExampleAnomalies, "baseline_statistics": standard_artifacts.ExampleStatistics,
    "best_hyperparameters": standard_artifacts.HyperParameters, "tuner_results": standard_artifacts.TunerResults,
    "model_run": standard_artifacts.ModelRun,
}
OUTPUTS = {"report": ui_artifacts.HTML, "summary": ui_artifacts.Markdown, "metrics": ui_artifacts.Metrics,
           "classification": ui_artifacts.ClassificationMetrics}
TASK_KEY, RUN_ID_KEY = "task", "run_id"


class RunSummarySpec(types.ComponentSpec):
    PARAMETERS = {TASK_KEY: ExecutionParameter(type=str), RUN_ID_KEY: ExecutionParameter(type=str)}
    INPUTS = {key: ChannelParameter(type=INPUT_TYPES[key], optional=key not in REQUIRED) for key in INPUTS}
    OUTPUTS = {key: ChannelParameter(type=cls) for key, cls in OUTPUTS.items()}
