"""The shape of a task declaration: everything the generic pipeline factory needs to know about a task.

Declarations themselves live in `pipelines/tasks/<task>.py` (one module per task, found by
`pipelines.tasks`); task code under `models/<task>/` is referenced by dotted path only, so it never
imports this layer."""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

@dataclass(frozen=True)
class SliceGate:
    """A per-slice blessing gate: on every slice of `feature_keys` with at least `min_examples`
    examples, `metric` may be at most `max_regression` below the baseline's (TFMA per-slice change
    thresholds; smaller slices are reported, not gated: their metrics are too noisy)."""

    feature_keys: Sequence[str]
    metric: str = "AUC"
    max_regression: float = 0.03
    min_examples: int = 200


@dataclass(frozen=True)
class ClassGate:
    """A per-class blessing gate of a multi-class task: for every class, `metric` (one of the task's
    class_metrics) may be at most `max_regression` below the baseline's, on the overall slice."""

    metric: str = "models.common.multiclass_metrics.TopOneRecall"
    max_regression: float = 0.03


@dataclass(frozen=True)
class EvalSpec:
    """What TFMA computes and how a candidate gets blessed."""

    # TFMA metric class names ("AUC"), or "package.module.ClassName" for a custom TFMA metric.
    metrics: Sequence[str]
    # Each entry is one slicing spec: () is the overall slice, ("gender",) slices by gender, ...
    slices: Sequence[Sequence[str]] = ((),)
    threshold_metric: str = "AUC"
    # The candidate is blessed only if threshold_metric >= min_value ...
    min_value: float = 0.5
    # ... and it is at most max_regression worse than the latest blessed baseline.
    max_regression: float = 0.01
    # Predictions are [batch, num_classes]; binary metrics use the probability of this class.
    # None: no binarization (a prediction that is one score per example, e.g. a similarity).
    positive_class_id: Optional[int] = 1
    # The serving_default output TFMA reads as the prediction.
    prediction_key: str = "probabilities"
    # Per-slice gates on top of the overall thresholds (none by default).
    slice_gates: Sequence[SliceGate] = ()
    # Multi-class tasks: metrics computed one-vs-rest for every class id (read back as
    # "recall/class_2"), e.g. models.common.multiclass_metrics' top-1 TopOneRecall; macro averages
    # are a metric of their own there (MacroAverages, in `metrics`).
    class_metrics: Sequence[str] = ()
    # A per-class gate on one of class_metrics (e.g. no class's recall may drop more than 0.03).
    class_gate: Optional[ClassGate] = None


@dataclass(frozen=True)
class ComponentResources:
    """Kubernetes resources for one component when compiled for Kubeflow."""

    cpu: Optional[str] = None
    memory: Optional[str] = None
    gpu: int = 0


@dataclass(frozen=True)
class TaskConfig:
    """One task = data location + preprocessing + model + evaluation policy."""

    name: str
    # Sub-directory of the data root that holds this task's raw input.
    data_dir: str
    label_key: str
    class_names: Sequence[str]
    preprocessing_fn: str  # dotted path, e.g. "models.census.preprocessing.preprocessing_fn"
    run_fn: str  # dotted path of the Trainer's run_fn
    eval: EvalSpec
    # Dotted path of a callable (input_base, data_version, split_ratio, component_id, **example_gen_args)
    # -> ExampleGen.
    example_gen: str = "components.example_gen.csv_example_gen"
    example_gen_args: Mapping[str, Any] = field(default_factory=dict)
    # Dotted path of the Tuner's tuner_fn; None builds a pipeline without a Tuner.
    tuner_fn: Optional[str] = None
    # A curated schema committed with the task (ImportSchemaGen); None infers one (SchemaGen).
    schema_file: Optional[str] = None
    train_steps: int = 1000
    eval_steps: int = 100
    tuner_max_trials: int = 4
    tuner_train_steps: int = 300
    # Hash buckets of the split ExampleGen makes, train:validation:test (models.common.contract.SPLITS).
    # The Tuner and the Trainer read train and validation; the Evaluator reads test alone. With 8:1:1
    # (or 3:1:1) the test bucket lies inside the former train:eval 4:1 eval bucket.
    split_ratio: Sequence[int] = (8, 1, 1)
    # Free-form settings handed to run_fn / tuner_fn as fn_args.custom_config.
    custom_config: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, ComponentResources] = field(default_factory=dict)
    # Beam options of the data-parallel steps (ExampleGen, StatisticsGen, Transform, Evaluator):
    # the DirectRunner here, Flink/Spark/Dataflow with `--beam-arg`. Where the steps run, not what
    # they compute, so not part of a run's config identity (compare=False; see --if-changed).
    beam_pipeline_args: Sequence[str] = field(
        default=("--direct_running_mode=in_memory", "--direct_num_workers=1"), compare=False)
    # The registry alias whose version a candidate must beat (else the newest blessed version).
    baseline_alias: str = "production"
    # Modules that register custom TensorFlow ops the SavedModel needs (e.g. "tensorflow_text"),
    # imported by the steps that load the model in a fresh process (the Evaluator).
    custom_op_modules: Sequence[str] = ()
    # Overall metrics (TFMA names) a run summary shows, in this order; () shows every scalar metric.
    headline_metrics: Sequence[str] = ()
    # The raw form `mlops predict` reads for this task (components/batch_inference/readers.py):
    # "csv" (a header row, the training columns; sentence pairs for sts) or "image_folder" (image
    # files, optionally in class sub-folders).
    predict_input: str = "csv"
    # What the model is for and where it must not be trusted (model cards of registered versions).
    intended_use: str = ""
    limitations: str = ""
    # `mlops registry reproduce`: how far each OVERALL metric (TFMA name, e.g. "auc") of a rebuilt
    # version may land from the registered value and still count as reproduced; metrics not named
    # here get pipelines.reproduce.DEFAULT_TOLERANCE. Not part of what a run does (compare=False, so
    # it is left out of the run's config hash too).
    reproduce_tolerance: Mapping[str, float] = field(default_factory=dict, compare=False)
    # raw files in a source folder -> data/<data_dir> (`mlops data import TASK --source DIR`).
    importer: Optional[Callable[[Path, Path], Path]] = field(default=None, compare=False, repr=False)

    def with_overrides(self, **overrides: Any) -> "TaskConfig":
        """A copy with the non-None overrides applied (CLI flags such as --train-steps)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, **clean)


def import_object(dotted: str):
    """The object named by a dotted path such as 'components.example_gen.csv_example_gen'."""
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)
