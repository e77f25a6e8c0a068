"""The pipeline factory: which components a task's pipeline is built from."""
from __future__ import annotations

from pipelines import factory, nodes


def test_pipeline_uses_the_atomic_pusher_and_the_drift_aware_validator(tmp_path):
    from components import metadata
    from components.atomic_pusher import AtomicPusher
    from components.strict_example_validator import StrictExampleValidator
    from pipelines.tasks import load_task

    pipeline = factory.create_pipeline(
        load_task("census"), pipeline_root=str(tmp_path / "p"), data_root=str(tmp_path / "d"),
        serving_root=str(tmp_path / "s"),
        metadata_connection_config=metadata.sqlite_config(str(tmp_path / "m.sqlite")),
    )
    by_id = {c.id: c for c in pipeline.components}
    assert isinstance(by_id[nodes.PUSHER], AtomicPusher)
    validator = by_id[nodes.EXAMPLE_VALIDATOR]
    assert isinstance(validator, StrictExampleValidator)
    assert validator.exec_properties["metadata_path"] == str(tmp_path / "m.sqlite")
