"""The pipeline factory: which components a task's pipeline is built from and how they connect."""
from __future__ import annotations

import pytest

from pipelines import factory, nodes
from pipelines.tasks import load_task


def _components(tmp_path, **kwargs):
    pipeline = factory.create_pipeline(
        load_task("census"), pipeline_root=str(tmp_path / "p"), data_root=str(tmp_path / "d"),
        serving_root=str(tmp_path / "s"), **kwargs)
    return {c.id: c for c in pipeline.components}


def test_pipeline_uses_the_atomic_pusher_and_the_drift_aware_validator(tmp_path):
    from components.atomic_pusher import AtomicPusher
    from components.strict_example_validator import StrictExampleValidator

    by_id = _components(tmp_path)
    assert isinstance(by_id[nodes.PUSHER], AtomicPusher)
    assert isinstance(by_id[nodes.EXAMPLE_VALIDATOR], StrictExampleValidator)


def test_the_registry_baseline_feeds_the_validator_and_the_evaluator(tmp_path):
    """No TFX Resolver: the Baseline component (a plain step everywhere) hands the Evaluator the
    model to beat and the validator the statistics it was trained on."""
    from components.baseline import Baseline

    by_id = _components(tmp_path, registry_uri="sqlite:///" + str(tmp_path / "mlflow.db"))
    baseline = by_id[nodes.BASELINE]
    assert isinstance(baseline, Baseline)
    assert baseline.exec_properties["model_name"] == "census"
    assert baseline.exec_properties["alias"] == "production"
    assert by_id[nodes.EVALUATOR].inputs["baseline_model"] is baseline.outputs["model"]
    assert by_id[nodes.EXAMPLE_VALIDATOR].inputs["baseline_statistics"] is baseline.outputs["statistics"]
    assert by_id[nodes.REGISTRAR].inputs["statistics"] is by_id[nodes.STATISTICS_GEN].outputs["statistics"]
    assert not any(type(c).__name__ == "Resolver" for c in by_id.values())


def test_opting_out_of_the_baseline_leaves_no_baseline_input(tmp_path):
    by_id = _components(tmp_path, baseline=False)
    assert nodes.BASELINE not in by_id
    assert "baseline_model" not in by_id[nodes.EVALUATOR].inputs
    assert "baseline_statistics" not in by_id[nodes.EXAMPLE_VALIDATOR].inputs


@pytest.mark.parametrize("name", ["census", "reviews"])
def test_the_evaluator_imports_exactly_the_custom_ops_the_task_declares(tmp_path, name):
    import json

    task = load_task(name)
    pipeline = factory.create_pipeline(task, pipeline_root=str(tmp_path / "p"), data_root=str(tmp_path / "d"),
                                       serving_root=str(tmp_path / "s"))
    evaluator = next(c for c in pipeline.components if c.id == nodes.EVALUATOR)
    declared = evaluator.exec_properties.get("custom_op_modules")
    assert (json.loads(declared) if declared else []) == list(task.custom_op_modules)


def _property(component, key) -> dict:
    """An exec property as a dict: TFX keeps protos as JSON (proto field names)."""
    import json

    from google.protobuf import json_format, message

    value = component.exec_properties[key]
    if isinstance(value, message.Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.parametrize("name", ["census", "heart", "pets", "reviews", "sts"])
def test_only_the_evaluator_can_read_the_test_split(tmp_path, name):
    """What each step is handed, for every task: Transform writes train and validation only, the
    Tuner and the Trainer read that output (never ExampleGen's) through train and validation, and
    the Evaluator reads ExampleGen's test split and nothing else."""
    from models.common.contract import SPLITS, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT

    pipeline = factory.create_pipeline(load_task(name), pipeline_root=str(tmp_path / "p"),
                                       data_root=str(tmp_path / "d"), serving_root=str(tmp_path / "s"))
    by_id = {c.id: c for c in pipeline.components}
    example_gen, transform = by_id[nodes.EXAMPLE_GEN], by_id[nodes.TRANSFORM]
    # Hash buckets, or (sts) the benchmark's own files: train, validation and test either way.
    split_names = [s["name"] for s in _property(example_gen, "output_config").get("split_config", {}).get("splits", [])]
    assert tuple(split_names or [s["name"] for s in _property(example_gen, "input_config")["splits"]]) == SPLITS
    assert _property(transform, "splits_config") == {"analyze": [TRAIN_SPLIT],
                                                     "transform": [TRAIN_SPLIT, VALIDATION_SPLIT]}
    for node in (nodes.TUNER, nodes.TRAINER):
        if node not in by_id:
            continue  # a task without a Tuner
        step = by_id[node]
        assert step.inputs["examples"] is transform.outputs["transformed_examples"], node
        assert not any(channel is example_gen.outputs["examples"] for channel in step.inputs.values()), node
        assert _property(step, "train_args")["splits"] == [TRAIN_SPLIT], node
        assert _property(step, "eval_args")["splits"] == [VALIDATION_SPLIT], node
    evaluator = by_id[nodes.EVALUATOR]
    assert evaluator.inputs["examples"] is example_gen.outputs["examples"]
    assert _property(evaluator, "example_splits") == [TEST_SPLIT]
