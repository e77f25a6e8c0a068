"""The run summary's executor: the run as the report reads it (a RunRecord built from the step's
input artifacts), then the report page, the Markdown summary and the metrics artifacts.

Inputs on an object store are copied to a local scratch directory first: the report reads
artifacts with local file calls, as `mlops report --kfp-run` reads a Kubeflow run from its cache."""
from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio

from pipelines.run_summary.spec import INPUTS, RUN_ID_KEY, TASK_KEY


def _is_remote(uri: str) -> bool:
    return "://" in uri


def _copy_tree(source: str, destination: str) -> None:
    """Copy an artifact directory to a local path: on s3:// with boto3, as the launcher and `mlops
    report --kfp-run` do (the entrypoint removes the `<dir>/` marker objects, without which
    TensorFlow's S3 file system does not see a directory); elsewhere through TFX's fileio."""
    from pipelines.kubeflow import object_store

    if source.startswith("s3://"):
        object_store.S3Store().download(source, Path(destination))
        return
    for directory, _, files in fileio.walk(source):
        relative = posixpath.relpath(directory.rstrip("/"), source.rstrip("/"))
        target = destination if relative == "." else os.path.join(destination, relative)
        os.makedirs(target, exist_ok=True)
        for name in files:
            fileio.copy(posixpath.join(directory, name), os.path.join(target, name), overwrite=True)


def _properties(artifact) -> Dict[str, Any]:
    """An input artifact's properties as the readers expect them. On the pod TFX rebuilds custom
    properties from the executor input's JSON metadata as {"__value__": v} structs (a blessing's
    `blessed` is {"__value__": 1.0}), so JSON values are unwrapped to the value itself."""
    from pipelines.lineage import property_value

    mlmd = artifact.mlmd_artifact
    found = {}
    for name in list(mlmd.properties) + list(mlmd.custom_properties):
        value = property_value(mlmd, name)
        if isinstance(value, dict) and set(value) == {"__value__"}:
            value = value["__value__"]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON numbers come back as floats: 1.0 -> 1, as a local run records it
        found[name] = value
    return found


def run_record(input_dict: Dict[str, List[Any]], task: str, run_id: str, scratch: str):
    """The run as far as the summary sees it: one complete node per producer of an input, each with
    the outputs it handed over (local URIs)."""
    from pipelines import lineage, nodes

    executions: Dict[str, lineage.NodeExecution] = {}
    for key, (node_id, output) in INPUTS.items():
        artifacts = input_dict.get(key) or []
        if not artifacts:
            continue
        artifact = artifacts[0]
        uri = artifact.uri
        if _is_remote(uri):
            local = os.path.join(scratch, node_id, output)
            _copy_tree(uri, local)
            uri = local
        node = executions.setdefault(node_id, lineage.NodeExecution(node_id, 0, "complete", 0, 0))
        node.outputs[output] = [lineage.ArtifactRecord(id=artifact.id or 0, type=artifact.type_name, uri=uri,
                                                       key=output, properties=_properties(artifact))]
    return lineage.RunRecord(pipeline=nodes.pipeline_name(task), run_id=run_id, nodes=executions)


def _task_config(task: str):
    try:
        from pipelines.tasks import load_task

        return load_task(task)
    except Exception:  # noqa: BLE001 - a task this image does not know still gets its summary
        return None


def _write_text(uri: str, text: str) -> None:
    """The artifact's URI is the file itself (the UI reads the URI as one file)."""
    if not _is_remote(uri):
        os.makedirs(os.path.dirname(uri), exist_ok=True)
    with fileio.open(uri, "w") as f:
        f.write(text)


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        from pipelines import slices
        from pipelines.report import build_context, render
        from pipelines.run_summary import content

        task, run_id = exec_properties[TASK_KEY], exec_properties[RUN_ID_KEY]
        task_config = _task_config(task)
        class_names = list(getattr(task_config, "class_names", None) or [])
        with tempfile.TemporaryDirectory(prefix="mlops-run-summary-") as scratch:
            record = run_record(input_dict, task, run_id, scratch)
            context = build_context(record, task, task_config)
            # The run is still going (this step runs beside the Pusher): no times, and the run's own
            # start is not known to a step.
            context["duration"] = "— (running)"
            for node in context["nodes"]:
                node["seconds"] = None
            _write_text(output_dict["report"][0].uri, render(context))

            evaluation_uri = record.nodes[INPUTS["evaluation"][0]].output("evaluation").uri
            table: Optional[slices.SliceTable] = None
            try:
                table = slices.load_slice_table(evaluation_uri)
            except Exception as exc:  # noqa: BLE001 - the report already shows the error
                logging.warning("could not read the evaluation's slices: %s", exc)
            metric = table.default_metric(getattr(getattr(task_config, "eval", None), "threshold_metric", None)) \
                if table else None
            _write_text(output_dict["summary"][0].uri, content.markdown(context, table, metric))

            metrics = output_dict["metrics"][0]
            for name, value in content.scalar_metrics(table).items():
                metrics.set_float_custom_property(name, value)

            found = content.classification(evaluation_uri, class_names) if class_names else None
            for name, value in (found or {}).items():
                output_dict["classification"][0].set_json_value_custom_property(name, value)
