"""TFX's Evaluator, which first imports the modules that register the custom TensorFlow ops a task's
SavedModel needs (a task declares them, e.g. tensorflow-text for in-graph WordPiece).

A fresh process (an Evaluator container on Kubeflow, a new local process) cannot load such a
SavedModel until those ops are registered; tasks without custom ops import nothing extra.
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Sequence

import tensorflow as tf
from absl import logging

from tfx.components import Evaluator as TfxEvaluator
from tfx.components.evaluator import executor as evaluator_executor
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import io_utils, json_utils

from components import baseline
from components.custom_ops import import_custom_ops

# Execution property: JSON list of module names to import before loading the model.
CUSTOM_OP_MODULES_KEY = "custom_op_modules"
# Execution property: JSON {"gender": 200, ...}: slice-gate failures on slices of these columns
# with fewer examples do not block blessing (their metrics are too noisy to gate on).
SLICE_MIN_EXAMPLES_KEY = "slice_min_examples"
# Custom property of the ModelBlessing: the baseline the candidate was compared against.
PROP_BASELINE = "baseline"


def with_worker_imports(beam_pipeline_args: Sequence[str], modules: Sequence[str]) -> list:
    """The Beam args plus `--beam_plugin=MODULE` for each module: Beam imports its plugins in every
    worker process at start-up. TFMA loads the SavedModel in the workers, which are other processes
    than the executor's under the DirectRunner's multi_processing mode, Flink, Spark or Dataflow;
    without the import there, loading a model with custom ops fails (`Op type not registered`)."""
    args = list(beam_pipeline_args)
    return args + [flag for flag in (f"--beam_plugin={m}" for m in modules) if flag not in args]


class CustomOpsExecutor(evaluator_executor.Executor):
    """TFX's Evaluator executor after importing the custom ops (here and in every Beam worker); a
    Baseline output that stands for no version (a task's first model) is dropped, so only value
    thresholds gate."""

    def Do(self, input_dict, output_dict, exec_properties):
        modules = json.loads(exec_properties.get(CUSTOM_OP_MODULES_KEY) or "[]")
        import_custom_ops(modules)
        self._beam_pipeline_args = with_worker_imports(self._beam_pipeline_args, modules)
        properties = {k: v for k, v in exec_properties.items() if k != CUSTOM_OP_MODULES_KEY}
        inputs = dict(input_dict)
        candidates = inputs.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        inputs[standard_component_specs.BASELINE_MODEL_KEY] = [a for a in candidates if baseline.has_baseline(a)]
        properties = {k: v for k, v in properties.items() if k != SLICE_MIN_EXAMPLES_KEY}
        result = super().Do(inputs, output_dict, properties)
        minimums = json.loads(exec_properties.get(SLICE_MIN_EXAMPLES_KEY) or "{}")
        if minimums:
            evaluation = artifact_utils.get_single_instance(output_dict[standard_component_specs.EVALUATION_KEY])
            blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
            ungate_small_slices(evaluation.uri, blessing, minimums)
        described = baseline.describe(candidates[0]) if candidates else None
        for blessing in output_dict.get(standard_component_specs.BLESSING_KEY, []):
            blessing.set_string_custom_property(PROP_BASELINE, described or "none")
        return result


def ungate_small_slices(evaluation_uri: str, blessing, minimums: Dict[str, int]) -> None:
    """Drop TFMA's threshold failures on gated slices smaller than their minimum, and bless again
    when nothing else failed. TFMA has no minimum slice size for a threshold; this is it."""
    import tensorflow_model_analysis as tfma
    from tfx.components.evaluator import constants as evaluator_constants

    result = tfma.load_validation_result(evaluation_uri)
    if result.validation_ok:
        return
    counts = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        for kv in per_slice.metric_keys_and_values:
            if kv.key.name == "example_count" and not kv.key.model_name.startswith("baseline"):
                counts[per_slice.slice_key.SerializeToString()] = kv.value.double_value.value
    kept = []
    for per_slice in result.metric_validations_per_slice:
        columns = ",".join(single.column for single in per_slice.slice_key.single_slice_keys)
        minimum = minimums.get(columns)
        size = counts.get(per_slice.slice_key.SerializeToString(), 0)
        if minimum and size < minimum:
            logging.info("slice gate: ignoring %d failure(s) on a slice of %d examples (< %d)",
                         len(per_slice.failures), size, minimum)
            continue
        kept.append(per_slice)
    if len(kept) == len(result.metric_validations_per_slice):
        return
    del result.metric_validations_per_slice[:]
    result.metric_validations_per_slice.extend(kept)
    result.validation_ok = not kept and not result.missing_slices
    [path] = fileio.glob(os.path.join(evaluation_uri, "validations*"))
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(result.SerializeToString())
    if result.validation_ok:
        fileio.remove(os.path.join(blessing.uri, evaluator_constants.NOT_BLESSED_FILE_NAME))
        io_utils.write_string_file(os.path.join(blessing.uri, evaluator_constants.BLESSED_FILE_NAME), "")
        blessing.set_int_custom_property(evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
                                         evaluator_constants.BLESSED_VALUE)


class EvaluatorSpec(standard_component_specs.EvaluatorSpec):
    PARAMETERS = {
        **standard_component_specs.EvaluatorSpec.PARAMETERS,
        CUSTOM_OP_MODULES_KEY: ExecutionParameter(type=str, optional=True),
        SLICE_MIN_EXAMPLES_KEY: ExecutionParameter(type=str, optional=True),
    }


class Evaluator(TfxEvaluator):
    """TFX's Evaluator (same inputs, outputs and id) for an EvalConfig and the `example_splits` it
    reads, plus `custom_op_modules`."""

    SPEC_CLASS = EvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CustomOpsExecutor)

    def __init__(self, *, examples, model, eval_config, baseline_model=None,
                 example_splits: Optional[Sequence[str]] = None,
                 custom_op_modules: Optional[Sequence[str]] = None,
                 slice_min_examples: Optional[Dict[str, int]] = None):
        spec = EvaluatorSpec(
            examples=examples,
            model=model,
            baseline_model=baseline_model,
            eval_config=eval_config,
            fairness_indicator_thresholds=json_utils.dumps(None),
            # None: TFX's default, the "eval" split.
            example_splits=json_utils.dumps(list(example_splits) if example_splits else None),
            custom_op_modules=json.dumps(list(custom_op_modules)) if custom_op_modules else None,
            slice_min_examples=json.dumps(dict(slice_min_examples)) if slice_min_examples else None,
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
