"""RunSummary: the last step of a compiled (Kubeflow) pipeline, which puts the run's report, a
Markdown summary and its metrics where the Kubeflow UI shows them.

Outputs (components.ui_artifacts, the types the KFP frontend renders on a step's Visualization tab
and in run comparison): `report` (system.HTML: the report `mlops report` writes for a local run),
`summary` (system.Markdown: blessed or not and why, the baseline, the threshold metric per slice
with pass/fail), `metrics` (system.Metrics: the Overall slice's metrics) and `classification`
(system.ClassificationMetrics: confusion matrix and ROC points; left empty for a regression task).

Wiring: its inputs are the report's artifacts (runs.base.READ_BACK) of the Evaluator and of the
steps before it, never the InfraValidator's, the Pusher's or the Registrar's. On the 2.17 backend a
task runs when every task it depends on succeeded (Argo `depends: X.Succeeded`); the Evaluator
succeeds whether it blesses or not, so the summary runs in both cases, in parallel with the
infra validation, push and registration, none of which depend on it: its failure cannot change
them. It needs no model or examples, so the launcher downloads only the small artifacts.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec

from pipelines import nodes
from pipelines.run_summary.executor import Executor
from pipelines.run_summary.spec import INPUTS, OUTPUTS, REQUIRED, RunSummarySpec


class RunSummary(base_component.BaseComponent):
    SPEC_CLASS = RunSummarySpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, task: str, run_id: str, **inputs: Any):
        outputs = {key: types.Channel(type=cls) for key, cls in OUTPUTS.items()}
        super().__init__(spec=RunSummarySpec(task=task, run_id=run_id, **inputs, **outputs))


def wire(components: Mapping[str, Any], *, task: str, run_id: str) -> RunSummary:
    """The summary step fed from the pipeline's nodes (id -> component); a node the pipeline lacks
    (no Tuner, no Baseline) leaves its inputs out."""
    channels: Dict[str, Any] = {}
    for key, (node_id, output) in INPUTS.items():
        node = components.get(node_id)
        if node is not None:
            channels[key] = node.outputs[output]
    missing = [key for key in REQUIRED if key not in channels]
    if missing:
        raise ValueError(f"the run summary needs the Evaluator's outputs ({', '.join(missing)} missing)")
    return RunSummary(task=task, run_id=run_id, **channels).with_id(nodes.RUN_SUMMARY)
