"""The one pipeline factory shared by every task. It knows nothing about where it runs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from components.atomic_pusher import AtomicPusher
from components.baseline import Baseline
from components.infra_validator import InfraValidator
from components.registrar import Registrar
from components.evaluator import Evaluator
from components.strict_example_validator import StrictExampleValidator
from models.common.contract import (
    LABEL_XF, SERVING_SIGNATURE, TEST_SPLIT, TRAIN_SPLIT, TRANSFORM_SIGNATURE, VALIDATION_SPLIT,
)
from pipelines import nodes
from pipelines.config import EvalSpec, TaskConfig, import_object

def resolve_package_file(relative: str, package_root: Optional[str] = None) -> str:
    """Absolute path of a file shipped with the project's packages (e.g. a curated schema).

    The file must exist in this checkout. With package_root (e.g. "/app" in the pipeline image) the
    path is returned under that directory instead of the checkout.
    """
    root = Path(__file__).resolve().parent.parent
    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{relative} not found under {root}")
    if package_root:
        return f"{package_root.rstrip('/')}/{Path(relative).as_posix()}"
    return str(path)


def build_eval_config(task: TaskConfig) -> tfma.EvalConfig:
    """TFMA config: metrics on the positive class (or on the raw prediction when positive_class_id is
    None), the task's slices, and the blessing thresholds."""
    spec: EvalSpec = task.eval
    threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": spec.min_value}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -spec.max_regression},
        ),
    )
    # The blessing threshold applies to the overall slice; other slices are gated only by the task's
    # slice gates (and only where they hold enough examples, see components.evaluator).
    overall_only = [
        tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)
    ]
    gated = {name: list(overall_only) if name == spec.threshold_metric else [] for name in spec.metrics}
    for gate in spec.slice_gates:
        if gate.metric not in gated:
            raise ValueError(f"slice gate on {gate.metric!r}, which the task's eval spec does not compute")
        gated[gate.metric].append(tfma.PerSliceMetricThreshold(
            slicing_specs=[tfma.SlicingSpec(feature_keys=list(gate.feature_keys))],
            threshold=tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
                direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -gate.max_regression},
            )),
        ))
    metrics = [
        tfma.MetricConfig(
            # "pkg.module.Class" names a custom TFMA metric (the Evaluator imports pkg.module).
            class_name=name.rpartition(".")[2],
            module=name.rpartition(".")[0],
            per_slice_thresholds=gated[name] or None,
        )
        for name in spec.metrics
    ]
    binarize = None
    if spec.positive_class_id is not None:
        binarize = tfma.BinarizationOptions(class_ids={"values": [spec.positive_class_id]})
        # The share of positives per slice: where it is 0 or 1, AUC and recall are undefined and read
        # n/a (components.evaluation.mark_undefined) instead of TFMA's 0.
        metrics.append(tfma.MetricConfig(class_name="MeanLabel"))
    metrics += _classification_plots(task)
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=SERVING_SIGNATURE,
                prediction_key=spec.prediction_key,
                label_key=LABEL_XF,
                preprocessing_function_names=[TRANSFORM_SIGNATURE],
            )
        ],
        slicing_specs=[tfma.SlicingSpec(feature_keys=list(keys)) for keys in spec.slices],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount")]),
            tfma.MetricsSpec(metrics=metrics, binarize=binarize),
        ] + class_metrics_specs(spec, len(task.class_names)),
    )


def class_metrics_specs(spec: EvalSpec, num_classes: int) -> list:
    """Multi-class metrics (EvalSpec.class_metrics): one key per class id (binarize.class_ids), with
    the per-class gate (EvalSpec.class_gate) as a change threshold on every class's key."""
    if not spec.class_metrics:
        if spec.class_gate is not None:
            raise ValueError("a class gate needs class_metrics")
        return []
    if num_classes < 2:
        raise ValueError("class_metrics need a classifier (class_names)")
    gate = spec.class_gate
    if gate is not None and gate.metric not in spec.class_metrics:
        raise ValueError(f"class gate on {gate.metric!r}, which the task's class_metrics do not compute")
    per_class = []
    for name in spec.class_metrics:
        thresholds = None
        if gate is not None and name == gate.metric:
            thresholds = [tfma.PerSliceMetricThreshold(
                slicing_specs=[tfma.SlicingSpec()],
                threshold=tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
                    direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -gate.max_regression})),
            )]
        # "pkg.module.Class" names a custom TFMA metric, as in EvalSpec.metrics.
        per_class.append(tfma.MetricConfig(class_name=name.rpartition(".")[2], module=name.rpartition(".")[0],
                                           per_slice_thresholds=thresholds))
    return [tfma.MetricsSpec(metrics=per_class,
                             binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}))]


# Points of the binary confusion-matrix plot (ROC curve, matrix at 0.5) the run summary draws.
PLOT_THRESHOLDS = 100


def _classification_plots(task: TaskConfig) -> list:
    """The confusion-matrix plot of a classifier (binary: over thresholds, for the ROC curve), for
    the run summary's system.ClassificationMetrics; none for a regression task."""
    if task.eval.positive_class_id is not None:
        return [tfma.MetricConfig(class_name="ConfusionMatrixPlot",
                                  config=f'{{"num_thresholds": {PLOT_THRESHOLDS}}}')]
    if len(task.class_names) > 2:
        return [tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot")]
    return []


def create_pipeline(
    task: TaskConfig,
    *,
    pipeline_root: str,
    data_root: str,
    serving_root: str,
    data_version: Optional[Mapping[str, Any]] = None,
    enable_cache: bool = True,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[Sequence[str]] = None,
    package_root: Optional[str] = None,
    registry_uri: Optional[str] = None,
    code_version: Optional[Mapping[str, Any]] = None,
    baseline: bool = True,
    run_id: Optional[str] = None,
    data_snapshot=None,
    run_summary: bool = False,
) -> tfx.dsl.Pipeline:
    """Baseline + ExampleGen → StatisticsGen → (Import)SchemaGen → ExampleValidator → Transform →
    [Tuner] → Trainer → Evaluator → InfraValidator → Pusher → Registrar for one task.

    registry_uri: the MLflow registry the Baseline reads and the Registrar writes
    (MLFLOW_TRACKING_URI at run time wins); code_version: {'commit', 'dirty'} of the code, tagged
    on registered versions; baseline: compare the candidate with the registry's baseline version
    (task.baseline_alias, else the newest blessed version) and check drift against the data it was
    trained on. Without it (an explicit opt-out) only value thresholds gate and drift is not checked.
    run_id: how steps name the run when the orchestrator does not tell them (Kubeflow: a placeholder
    its driver fills in); locally the runner's run id reaches them through TFX's context.
    data_snapshot: a node ExampleGen waits for (Kubeflow: the step that materialises the DVC version
    under data_root, components.data_snapshot). run_summary: end with the step that shows the run in
    the Kubeflow UI (pipelines.run_summary; compiled pipelines only)."""
    example_gen = import_object(task.example_gen)(
        input_base=os.path.join(data_root, task.data_dir),
        data_version=data_version or {},
        split_ratio=task.split_ratio,
        component_id=nodes.EXAMPLE_GEN,
        **dict(task.example_gen_args),
    )
    if data_snapshot is not None:
        example_gen.add_upstream_node(data_snapshot)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(nodes.STATISTICS_GEN)
    if task.schema_file:
        schema_gen = tfx.components.ImportSchemaGen(
            schema_file=resolve_package_file(task.schema_file, package_root)
        ).with_id(nodes.SCHEMA_GEN)
    else:
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
        ).with_id(nodes.SCHEMA_GEN)
    # The registered model to beat, and the statistics of the data it was trained on (drift baseline).
    baseline_node = Baseline(
        model_name=task.name, alias=task.baseline_alias, registry_uri=registry_uri,
    ).with_id(nodes.BASELINE) if baseline else None
    example_validator = StrictExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        baseline_statistics=baseline_node.outputs["statistics"] if baseline_node else None,
        # Every label class must appear in every split (a classifier's task declares its classes).
        label_key=task.label_key,
        num_classes=len(task.class_names),
    ).with_id(nodes.EXAMPLE_VALIDATOR)
    # Analysed on train; train and validation transformed for the Tuner and the Trainer. Test is
    # left out, so nothing that selects a model can read it: the Evaluator reads ExampleGen's raw
    # test split through the model's transform_features signature.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=task.preprocessing_fn,
        splits_config=tfx.proto.SplitsConfig(analyze=[TRAIN_SPLIT], transform=[TRAIN_SPLIT, VALIDATION_SPLIT]),
    ).with_id(nodes.TRANSFORM)
    # Transform must not start on data the validator rejected.
    transform.add_upstream_node(example_validator)

    custom_config = {
        "task": task.name,
        "label_key": task.label_key,
        "class_names": list(task.class_names),
        **dict(task.custom_config),
    }
    components = ([baseline_node] if baseline_node else []) + [
        example_gen, statistics_gen, schema_gen, example_validator, transform]

    hyperparameters = None
    if task.tuner_fn:
        tuner = tfx.components.Tuner(
            tuner_fn=task.tuner_fn,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT], num_steps=task.tuner_train_steps),
            eval_args=tfx.proto.EvalArgs(splits=[VALIDATION_SPLIT], num_steps=task.eval_steps),
            custom_config={**custom_config, "max_trials": task.tuner_max_trials},
        ).with_id(nodes.TUNER)
        hyperparameters = tuner.outputs["best_hyperparameters"]
        components.append(tuner)

    trainer = tfx.components.Trainer(
        run_fn=task.run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=hyperparameters,
        train_args=tfx.proto.TrainArgs(splits=[TRAIN_SPLIT], num_steps=task.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[VALIDATION_SPLIT], num_steps=task.eval_steps),
        custom_config=custom_config,
    ).with_id(nodes.TRAINER)
    components.append(trainer)
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_node.outputs["model"] if baseline_node else None,
        eval_config=build_eval_config(task),
        example_splits=[TEST_SPLIT],
        custom_op_modules=task.custom_op_modules,
        slice_min_examples={",".join(g.feature_keys): g.min_examples for g in task.eval.slice_gates},
    ).with_id(nodes.EVALUATOR)
    # The blessed candidate served in a fresh process (serving imports only) and checked before a push.
    infra_validator = InfraValidator(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        examples=example_gen.outputs["examples"],
        label_key=task.label_key,
        class_names=task.class_names,
        prediction_key=task.eval.prediction_key,
        custom_op_modules=task.custom_op_modules,
    ).with_id(nodes.INFRA_VALIDATOR)
    # Atomic: <serving>/<task>/<version>/ appears complete or not at all.
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=os.path.join(serving_root, task.name)
            )
        ),
    ).with_id(nodes.PUSHER)
    registrar = Registrar(
        task=task.name,
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_validator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        pushed_model=pusher.outputs["pushed_model"],
        examples=example_gen.outputs["examples"],
        hyperparameters=hyperparameters,
        statistics=statistics_gen.outputs["statistics"],
        registry_uri=registry_uri,
        code_version=code_version,
        metadata_connection_config=metadata_connection_config,
        intended_use=task.intended_use,
        limitations=task.limitations,
        pipeline_name=nodes.pipeline_name(task.name),
        run_id=run_id,
    ).with_id(nodes.REGISTRAR)
    components += [evaluator, infra_validator, pusher, registrar]
    if data_snapshot is not None:
        components.insert(0, data_snapshot)
    if run_summary:
        from pipelines import run_summary as summary

        components.append(summary.wire({c.id: c for c in components}, task=task.name, run_id=run_id or ""))

    return tfx.dsl.Pipeline(
        pipeline_name=nodes.pipeline_name(task.name),
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args if beam_pipeline_args is not None else task.beam_pipeline_args),
    )
