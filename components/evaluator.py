"""TFX's Evaluator, which first imports the modules that register the custom TensorFlow ops a task's
SavedModel needs (a task declares them, e.g. tensorflow-text for in-graph WordPiece).

A fresh process (an Evaluator container on Kubeflow, a new local process) cannot load such a
SavedModel until those ops are registered; tasks without custom ops import nothing extra.
"""
from __future__ import annotations

import importlib
import json
from typing import Optional, Sequence

from tfx.components import Evaluator as TfxEvaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components import baseline

# Execution property: JSON list of module names to import before loading the model.
CUSTOM_OP_MODULES_KEY = "custom_op_modules"
# Custom property of the ModelBlessing: the baseline the candidate was compared against.
PROP_BASELINE = "baseline"


def import_custom_ops(modules: Sequence[str]) -> None:
    """Import each module (registering its ops); a missing one is an error naming it."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ImportError(f"the model needs the custom ops of {name!r}, which cannot be imported: {exc}") from exc


class CustomOpsExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor after importing the custom ops; a Baseline output that stands for
    no version (a task's first model) is dropped, so only value thresholds gate."""

    def Do(self, input_dict, output_dict, exec_properties):
        import_custom_ops(json.loads(exec_properties.get(CUSTOM_OP_MODULES_KEY) or "[]"))
        properties = {k: v for k, v in exec_properties.items() if k != CUSTOM_OP_MODULES_KEY}
        inputs = dict(input_dict)
        candidates = inputs.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        inputs[standard_component_specs.BASELINE_MODEL_KEY] = [a for a in candidates if baseline.has_baseline(a)]
        result = super().Do(inputs, output_dict, properties)
        described = baseline.describe(candidates[0]) if candidates else None
        for blessing in output_dict.get(standard_component_specs.BLESSING_KEY, []):
            blessing.set_string_custom_property(PROP_BASELINE, described or "none")
        return result


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        CUSTOM_OP_MODULES_KEY: ExecutionParameter(type=str, optional=True),
    }


class Evaluator(TfxEvaluator):
    """TFX's Evaluator (same inputs, outputs and id) for an EvalConfig, plus `custom_op_modules`."""

    SPEC_CLASS = EvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CustomOpsExecutor)

    def __init__(self, *, examples, model, eval_config, baseline_model=None,
                 custom_op_modules: Optional[Sequence[str]] = None):
        spec = EvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            eval_config=eval_config,
            fairness_indicator_thresholds=json_utils.dumps(None),
            example_splits=json_utils.dumps(None),
            custom_op_modules=json.dumps(list(custom_op_modules)) if custom_op_modules else None,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
