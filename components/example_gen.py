"""ExampleGen for CSV input that also records the DVC data version on its output."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from tfx.components import FileBasedExampleGen
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import data_version as dv


class VersionedCsvExecutor(csv_executor.Executor):
    """CsvExampleGen's executor, plus the data version stamped on the Examples artifact."""

    def Do(self, input_dict, output_dict, exec_properties):
        super().Do(input_dict, output_dict, exec_properties)
        version = dv.from_exec_properties(exec_properties)
        for artifact in output_dict["examples"]:
            dv.stamp(artifact, version)


def csv_example_gen(
    input_base: str,
    data_version: Mapping[str, Any],
    split_ratio=(4, 1),
    component_id: str = "CsvExampleGen",
    output_config: Optional[example_gen_pb2.Output] = None,
):
    """A CSV ExampleGen with a deterministic hash-based train/eval split."""
    if output_config is None:
        train, eval_ = split_ratio
        output_config = example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(
                splits=[
                    example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=train),
                    example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_),
                ]
            )
        )
    return FileBasedExampleGen(
        input_base=input_base,
        output_config=output_config,
        custom_config=dv.to_custom_config(data_version),
        custom_executor_spec=executor_spec.BeamExecutorSpec(VersionedCsvExecutor),
    ).with_id(component_id)
