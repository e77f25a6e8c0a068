"""Step entrypoint for the open-source Kubeflow Pipelines backend (KFP v2 on Argo).

Every step of a package compiled by `mlops compile` runs

    python -m components.kfp_entrypoint --executor_class_path ... --json_serialized_invocation_args {{$}} ...

with the arguments of TFX's own entrypoint (tfx.orchestration.kubeflow.v2.container.
kubeflow_v2_run_executor). It repairs the executor input the way the open-source backend sends it,
hands over to TFX's `main` with the repaired JSON, and then tidies the step's outputs:

1. Outputs the step did not declare are dropped. The driver adds `executor-logs` (typed
   `schemaTitle: system.Artifact`) to every step when logs are published, the default; TFX declares
   every artifact with an `instanceSchema` and fails on the title ("Could not import system.Artifact").
2. Input artifacts recorded by the backend arrive with `type: {instanceSchema: ""}` (or no type);
   TFX fails on the empty schema. Their type is taken from `--json_serialized_inputs_spec_args`.
3. Their metadata is what the launcher recorded in ML Metadata, read back: a list comes back as
   {"list": [...]}, a struct as {"struct": {...}}, a bool as the number 1 or 0, and the backend adds
   `display_name` and `store_session_info`. Lists and structs are unwrapped and the two added keys
   dropped. A bool cannot be recognised on the way back, so after a step on that backend the
   entrypoint rewrites a bare true/false in its output metadata as {"__value__": true}, which TFX
   reads back as the bool (a JSON value with that key is how TFX stores a single value), and drops
   nulls, which the launcher cannot record at all.
4. After the step, zero-byte directory-marker objects (`<dir>/`) under its output URIs are deleted
   on object stores that have them (s3://, gs://): the launcher downloads every input prefix and a
   marker becomes a file where a directory must go (kubeflow/pipelines#13476). Markers of empty
   directories are kept: there the download does not fail, and deleting them removes the directory.

An executor input without any of these (as Vertex AI sends it) is passed to TFX unchanged.
Outputs typed for the KFP UI (`system.HTML`, ...; components.ui_artifacts) are mapped to their
classes, which TFX cannot import by those titles.

The process exits with the step's own status (`main`), never through interpreter teardown, and a
step compiled with a GPU request fails at once with one line when TensorFlow sees no GPU
(`components.gpu_check`).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from typing import Any, Iterable, List, Optional, Tuple

from components import gpu_check

# Custom properties the launcher adds to every output artifact it records (metadata/client.go).
BACKEND_PROPERTIES = ("display_name", "store_session_info")
# How the launcher stores list and struct metadata values (metadata/converter.go).
WRAPPED = {"list": "list_value", "struct": "struct_value"}
# TFX's key for a JSON property holding a single value (tfx.types.artifact).
SINGLE_VALUE_KEY = "__value__"
# Object stores whose TensorFlow file systems write `<dir>/` marker objects.
MARKER_SCHEMES = ("s3://", "gs://")


def _artifact_lists(artifacts) -> Iterable[Tuple[str, Any]]:
    for key, artifact_list in artifacts.items():
        for artifact in artifact_list.artifacts:
            yield key, artifact


def _untyped(artifact) -> bool:
    kind = artifact.type.WhichOneof("kind") if artifact.HasField("type") else None
    return kind is None or (kind == "instance_schema" and not artifact.type.instance_schema)


def _unwrap(metadata) -> None:
    """{"list": [...]} -> [...] and {"struct": {...}} -> {...}, in place; drop the backend's keys."""
    for key in BACKEND_PROPERTIES:
        if key in metadata.fields:
            del metadata.fields[key]
    for value in metadata.fields.values():
        if value.WhichOneof("kind") != "struct_value" or len(value.struct_value.fields) != 1:
            continue
        (wrapper, inner), = value.struct_value.fields.items()
        if WRAPPED.get(wrapper) == inner.WhichOneof("kind"):
            unwrapped = type(inner)()
            unwrapped.CopyFrom(inner)
            value.CopyFrom(unwrapped)


def repair_executor_input(executor_input, inputs_spec=None) -> bool:
    """Repair a pipeline_spec_pb2.ExecutorInput in place; True if anything needed repairing."""
    repaired = False
    outputs = executor_input.outputs.artifacts
    for key in [k for k, lst in outputs.items()
                if any(a.type.WhichOneof("kind") != "instance_schema" for a in lst.artifacts)]:
        del outputs[key]
        repaired = True
    declared = inputs_spec.artifacts if inputs_spec is not None else {}
    for key, artifact in _artifact_lists(executor_input.inputs.artifacts):
        if not _untyped(artifact):
            continue
        if key not in declared:
            raise ValueError(f"input artifact {key!r} has no type and the step's inputs spec does not declare it")
        artifact.type.CopyFrom(declared[key].artifact_type)
        _unwrap(artifact.metadata)
        repaired = True
    return repaired


def survivable_metadata(metadata: dict) -> bool:
    """Make an output artifact's metadata (JSON dict) survive the backend's round trip, in place: a
    bare bool becomes {"__value__": bool}, a null is dropped. True if anything changed."""
    changed = False
    for key in list(metadata):
        if metadata[key] is None:
            del metadata[key]
            changed = True
        elif isinstance(metadata[key], bool):
            metadata[key] = {SINGLE_VALUE_KEY: metadata[key]}
            changed = True
    return changed


def rewrite_output_metadata(path: str) -> None:
    """Apply `survivable_metadata` to the output metadata file TFX wrote (ExecutorOutput JSON)."""
    from tfx.dsl.io import fileio

    if not fileio.exists(path):
        return
    with fileio.open(path, "r") as f:
        output = json.loads(f.read())
    changed = False
    for artifact_list in output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            changed |= survivable_metadata(artifact.get("metadata") or {})
    if changed:
        with fileio.open(path, "w") as f:
            f.write(json.dumps(output))


class _GFile:
    """The two tf.io.gfile operations marker removal needs."""

    def __init__(self):
        import tensorflow as tf

        self._tf = tf

    def walk(self, uri: str):
        return self._tf.io.gfile.walk(uri)

    def remove(self, path: str) -> bool:
        try:
            self._tf.io.gfile.remove(path)
        except self._tf.errors.NotFoundError:
            return False
        return True


def remove_directory_markers(uri: str, fs=None) -> List[str]:
    """Delete the `<dir>/` marker objects of the non-empty directories under `uri` (itself included)
    on an object store; returns the markers deleted. Only the exact key `<dir>/` is deleted, never a
    file. A local path (or any other scheme) has no markers: nothing is done."""
    if not uri.startswith(MARKER_SCHEMES):
        return []
    fs = fs or _GFile()
    removed = []
    for directory, subdirs, files in fs.walk(uri):
        if subdirs or files:
            marker = directory.rstrip("/") + "/"
            if fs.remove(marker):
                removed.append(marker)
    return removed


def _after_step(executor_input, from_backend: bool) -> None:
    from absl import logging as log

    if from_backend and executor_input.outputs.output_file:
        rewrite_output_metadata(executor_input.outputs.output_file)
    for key, artifact in _artifact_lists(executor_input.outputs.artifacts):
        try:
            removed = remove_directory_markers(artifact.uri)
        except Exception as exc:  # the step's work is done; the next download names the problem
            log.warning("could not remove directory markers under %s (%s): %s", artifact.uri, key, exc)
            continue
        if removed:
            log.info("removed %d directory marker(s) under %s", len(removed), artifact.uri)


def register_ui_types() -> None:
    """Let TFX's entrypoint resolve the `system.*` schema titles of components.ui_artifacts."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    from components.ui_artifacts import CLASS_PATHS

    compiler_utils.TITLE_TO_CLASS_PATH.update(CLASS_PATHS)


def run(parsed: Tuple[Any, List[str]]) -> None:
    """absl main: repair the executor input, run TFX's entrypoint, tidy the outputs."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    args, beam_args = parsed
    register_ui_types()
    executor_input = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(args.json_serialized_invocation_args, executor_input, ignore_unknown_fields=True)
    inputs_spec: Optional[Any] = None
    if getattr(args, "json_serialized_inputs_spec_args", None):
        inputs_spec = pipeline_spec_pb2.ComponentInputsSpec()
        json_format.Parse(args.json_serialized_inputs_spec_args, inputs_spec, ignore_unknown_fields=True)

    from_backend = repair_executor_input(executor_input, inputs_spec)
    if from_backend:
        args.json_serialized_invocation_args = json_format.MessageToJson(executor_input)
    tfx_entrypoint.main((args, beam_args))
    _after_step(executor_input, from_backend)


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def run_to_status(argv: Optional[List[str]] = None) -> int:
    """Run the step and return its exit status; an exception is printed and becomes 1."""
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    try:
        gpu_check.require_gpu_if_requested()
        app.run(run, argv=argv or sys.argv, flags_parser=tfx_entrypoint._parse_flags)
    except SystemExit as exc:
        return _exit_status(exc)
    except gpu_check.NoGpuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - the launcher only sees the status; the log keeps the trace
        traceback.print_exc()
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> None:
    """Exit with the step's own status, skipping interpreter teardown.

    With tensorflow-io 0.37.1 on TF 2.16 (the only release for it), a process that touched `s3://`
    aborts during interpreter shutdown ("pure virtual method called", exit 134,
    tensorflow/io#2039), and the launcher fails a step on any non-zero exit although its outputs
    were written. Every output is closed by the time the executor returns, so the streams and
    logging handlers are flushed and the process ends with `os._exit(status)`.
    """
    status = run_to_status(argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream has nothing left to flush
            pass
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":
    main()
