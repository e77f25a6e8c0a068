"""ExampleValidator that stops the pipeline when the data has anomalies against the schema."""
from __future__ import annotations

from typing import List, Tuple

from tfx.components import ExampleValidator
from tfx.components.example_validator import executor as validator_executor
from tfx.dsl.components.base import executor_spec


class DataAnomalyError(RuntimeError):
    """The input data does not match the schema; nothing downstream may run on it."""


def describe_anomalies(anomalies) -> List[str]:
    """One readable line per anomaly: column, short description, details."""
    lines = []
    for column, info in sorted(anomalies.anomaly_info.items()):
        detail = info.description or "; ".join(r.description for r in info.reason)
        lines.append(f"column {column!r}: {info.short_description} ({detail})")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"dataset: {info.short_description} ({info.description})")
    return lines


class StrictExecutor(validator_executor.Executor):
    """Validates like ExampleValidator, then raises DataAnomalyError naming every anomaly."""

    def Do(self, input_dict, output_dict, exec_properties):
        self._found: List[Tuple[str, str]] = []
        result = super().Do(input_dict, output_dict, exec_properties)
        if self._found:
            where = output_dict["anomalies"][0].uri
            message = "\n  ".join(line for _, line in self._found)
            raise DataAnomalyError(
                f"data does not match the schema; the pipeline stops before training.\n  {message}\n"
                f"(anomalies written under {where})"
            )
        return result

    def _Validate(self, inputs, outputs):
        anomalies = super()._Validate(inputs, outputs)
        split_dir = str(outputs.get("schema_diff_path", ""))
        split = split_dir.rstrip("/").rsplit("Split-", 1)[-1] if "Split-" in split_dir else "?"
        for line in describe_anomalies(anomalies):
            self._found.append((split, f"[{split}] {line}"))
        return anomalies


class StrictExampleValidator(ExampleValidator):
    """ExampleValidator whose execution fails (and so stops the pipeline) on any anomaly."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(StrictExecutor)
