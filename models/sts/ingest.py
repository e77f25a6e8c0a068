"""STS's ExampleGen (TaskConfig.example_gen): the benchmark's own train/dev/test split, unchanged.

data/sts/train/* -> split "train", data/sts/dev/* -> "eval", data/sts/test/* -> "test". The hash
split ratio other tasks use does not apply (split_ratio is ignored). Reading and the data-version
stamp are the project's CSV ExampleGen executor (components/example_gen.py).
"""
from __future__ import annotations

from typing import Any, Mapping

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import data_version as dv
from components.example_gen import VersionedCsvExecutor
from models.sts import features as F


def presplit_csv_example_gen(input_base: str, data_version: Mapping[str, Any], splits: Mapping[str, str],
                             component_id: str = "ExampleGen"):
    """A CSV ExampleGen for data that comes already split: splits maps an output split name to a file
    pattern under input_base, e.g. {"train": "train/*", "eval": "dev/*"}. The output keeps exactly
    those splits (an empty output config: no re-splitting)."""
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=name, pattern=pattern) for name, pattern in splits.items()]
    )
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=input_config,
        output_config=example_gen_pb2.Output(),
        custom_config=dv.to_custom_config(data_version),
        custom_executor_spec=executor_spec.BeamExecutorSpec(VersionedCsvExecutor),
    ).with_id(component_id)


def example_gen(input_base: str, data_version: Mapping[str, Any], split_ratio=None,
                component_id: str = "ExampleGen"):
    return presplit_csv_example_gen(
        input_base=input_base,
        data_version=data_version,
        splits={split: f"{folder}/*" for split, folder in F.SPLITS.items()},
        component_id=component_id,
    )
