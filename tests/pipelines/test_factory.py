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
