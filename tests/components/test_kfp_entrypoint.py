"""components.kfp_entrypoint: the executor input of the open-source KFP backend, repaired for TFX.

The executor inputs here are built by hand in the shape backend/src/v2/driver (kubeflow/pipelines
2.17.0) sends: input artifacts named by their ML Metadata id, typed `{instanceSchema: ""}`, with the
metadata the launcher recorded read back; declared outputs plus `executor-logs`.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as tfx_utils
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint
from tfx.types import standard_artifacts

from components import kfp_entrypoint as ep
from pipelines.kubeflow import backend_semantics

EXAMPLES_SCHEMA = (
    "title: tfx.Examples\ntype: object\nproperties:\n  span:\n    type: integer\n"
    "  version:\n    type: integer\n  split_names:\n    type: string\n"
)
STATISTICS_SCHEMA = "title: tfx.ExampleStatistics\ntype: object\n"
INPUTS_SPEC = {
    "artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}},
    "parameters": {"exclude_splits": {"parameterType": "STRING"}},
}
OUTPUTS = {
    "statistics": {"artifacts": [{"name": "statistics", "type": {"instanceSchema": STATISTICS_SCHEMA},
                                  "uri": "s3://bucket/root/mlops-heart/run/StatisticsGen/u/statistics"}]},
}
EXECUTOR_LOGS = {"executor-logs": {"artifacts": [{
    "name": "executor-logs", "type": {"schemaTitle": "system.Artifact"},
    "uri": "s3://bucket/root/mlops-heart/run/StatisticsGen/u/executor-logs-0"}]}}


def backend_input(metadata):
    """StatisticsGen's executor input as the open-source driver builds it."""
    return {
        "inputs": {
            "parameterValues": {"exclude_splits": "[]"},
            "artifacts": {"examples": {"artifacts": [{
                "name": "41", "type": {"instanceSchema": ""},
                "uri": "s3://bucket/root/mlops-heart/run/ExampleGen/u/examples", "metadata": metadata}]}},
        },
        "outputs": {"artifacts": {**OUTPUTS, **EXECUTOR_LOGS},
                    "outputFile": "/s3/bucket/root/mlops-heart/run/StatisticsGen/u/output_metadata.json"},
    }


def vertex_input(metadata):
    """The same step as Vertex AI sends it: typed inputs, no executor-logs, metadata as written."""
    executor_input = backend_input(metadata)
    artifact = executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]
    artifact.update(name="projects/1/locations/x/metadataStores/default/artifacts/41",
                    type={"instanceSchema": EXAMPLES_SCHEMA})
    executor_input["outputs"]["artifacts"] = dict(OUTPUTS)
    return executor_input


def parse(executor_input):
    message = pipeline_spec_pb2.ExecutorInput()
    json_format.ParseDict(executor_input, message, ignore_unknown_fields=True)
    return message


def inputs_spec():
    spec = pipeline_spec_pb2.ComponentInputsSpec()
    json_format.ParseDict(INPUTS_SPEC, spec)
    return spec


def tfx_reads(message):
    """The input Examples artifact as TFX's own entrypoint parses it."""
    return tfx_utils.parse_raw_artifact_dict(message.inputs.artifacts, {})["examples"][0]


# What TFX wrote for ExampleGen's Examples, and what the backend gives the next step for it
# (metadata/converter.go: toMLMDArtifact stores a list as {"list": ...}, a struct as {"struct": ...}
# and a bool as an int; toRuntimeArtifact reads ints back as numbers; RecordArtifact adds
# display_name and store_session_info).
WRITTEN = {"span": 3.0, "version": 1.0, "split_names": "[\"train\", \"eval\"]", "dvc_data_dirty": 0.0,
           "tags": ["a", "b"], "config": {"hparams": {"batch_size": 32}}, "note": "text"}
RECORDED = {"span": 3.0, "version": 1.0, "split_names": "[\"train\", \"eval\"]", "dvc_data_dirty": 0.0,
            "tags": {"list": ["a", "b"]}, "config": {"struct": {"hparams": {"batch_size": 32}}}, "note": "text",
            "display_name": "examples", "store_session_info": "{\"Provider\":\"s3\",\"Params\":{}}"}


def test_stock_tfx_fails_on_the_backend_input():
    message = parse(backend_input(RECORDED))
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):
        tfx_reads(message)  # yaml.safe_load("") of the empty instanceSchema
    with pytest.raises(ImportError, match="Could not import system.Artifact"):
        tfx_utils.parse_raw_artifact_dict(message.outputs.artifacts, {})


def test_repair_drops_undeclared_outputs_and_types_inputs_from_the_inputs_spec():
    message = parse(backend_input(RECORDED))
    assert ep.repair_executor_input(message, inputs_spec()) is True
    assert list(message.outputs.artifacts) == ["statistics"]
    artifact = message.inputs.artifacts["examples"].artifacts[0]
    assert artifact.type.instance_schema == EXAMPLES_SCHEMA
    assert artifact.name == "41" and artifact.uri.endswith("/ExampleGen/u/examples")
    outputs = tfx_utils.parse_raw_artifact_dict(message.outputs.artifacts, {})
    assert isinstance(outputs["statistics"][0], standard_artifacts.ExampleStatistics)


def test_repair_undoes_the_metadata_conversions():
    message = parse(backend_input(RECORDED))
    ep.repair_executor_input(message, inputs_spec())
    assert json_format.MessageToDict(message.inputs.artifacts["examples"].artifacts[0].metadata) == WRITTEN
    examples = tfx_reads(message)
    assert isinstance(examples, standard_artifacts.Examples)
    assert examples.span == 3 and isinstance(examples.span, int) and examples.version == 1
    assert examples.split_names == "[\"train\", \"eval\"]"
    assert examples.get_int_custom_property("dvc_data_dirty") == 0
    assert examples.get_json_value_custom_property("tags") == ["a", "b"]
    assert examples.get_json_value_custom_property("config") == {"hparams": {"batch_size": 32}}
    assert examples.get_string_custom_property("note") == "text"
    assert not examples.has_custom_property("display_name")
    assert not examples.has_custom_property("store_session_info")


def test_an_artifact_without_any_type_is_typed_too():
    executor_input = backend_input(RECORDED)
    del executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"]
    message = parse(executor_input)
    assert ep.repair_executor_input(message, inputs_spec())
    assert isinstance(tfx_reads(message), standard_artifacts.Examples)


def test_an_untyped_input_the_spec_does_not_declare_is_an_error():
    with pytest.raises(ValueError, match="'examples' has no type"):
        ep.repair_executor_input(parse(backend_input(RECORDED)), pipeline_spec_pb2.ComponentInputsSpec())


def test_well_formed_input_is_left_alone():
    message = parse(vertex_input(WRITTEN))
    before = message.SerializeToString(deterministic=True)
    assert ep.repair_executor_input(message, inputs_spec()) is False
    assert message.SerializeToString(deterministic=True) == before


def _handover(monkeypatch, executor_input, tmp_path):
    """Run the entrypoint's main with TFX's main replaced by a recorder; returns what TFX got."""
    got = {}

    def record(parsed):
        got.update(json=parsed[0].json_serialized_invocation_args, beam=parsed[1])

    monkeypatch.setattr(tfx_entrypoint, "main", record)
    executor_input["outputs"]["outputFile"] = str(tmp_path / "output_metadata.json")
    for artifact_list in executor_input["outputs"]["artifacts"].values():  # no object store here
        artifact_list["artifacts"][0]["uri"] = str(tmp_path / artifact_list["artifacts"][0]["name"])
    text = json.dumps(executor_input)
    args = argparse.Namespace(executor_class_path="tfx.components.statistics_gen.executor.Executor",
                              json_serialized_invocation_args=text,
                              json_serialized_inputs_spec_args=json.dumps(INPUTS_SPEC))
    ep.run((args, ["--direct_num_workers=1"]))
    return text, got


def test_run_hands_tfx_the_repaired_input(monkeypatch, tmp_path):
    _, got = _handover(monkeypatch, backend_input(RECORDED), tmp_path)
    message = parse(json.loads(got["json"]))
    assert list(message.outputs.artifacts) == ["statistics"]
    assert isinstance(tfx_reads(message), standard_artifacts.Examples)
    assert got["beam"] == ["--direct_num_workers=1"]


def test_run_passes_well_formed_input_through_verbatim(monkeypatch, tmp_path):
    text, got = _handover(monkeypatch, vertex_input(WRITTEN), tmp_path)
    assert got["json"] == text


def test_round_trip_through_the_backend_reads_back_what_tfx_wrote():
    """TFX writes output metadata, the launcher records it in ML Metadata, the next driver reads it
    back (backend_semantics.to_mlmd / from_mlmd emulate converter.go); after the repair TFX reads every value
    as written, bools included (the entrypoint writes them as {"__value__": b} on that backend)."""
    written = {**WRITTEN, "flag": True, "off": False}
    metadata = json.loads(json.dumps(written))
    ep.survivable_metadata(metadata)
    recorded = backend_semantics.from_mlmd({**backend_semantics.to_mlmd(metadata), "display_name": ("string", "examples")})
    message = parse(backend_input(recorded))
    ep.repair_executor_input(message, inputs_spec())
    examples = tfx_reads(message)
    assert examples.span == 3 and examples.version == 1
    assert examples.get_json_value_custom_property("tags") == ["a", "b"]
    assert examples.get_json_value_custom_property("config") == {"hparams": {"batch_size": 32}}
    assert examples.get_bool_custom_property("flag") is True
    assert examples.get_bool_custom_property("off") is False
    # Without the rewrite a bool comes back as the number 1.
    unprotected = backend_semantics.from_mlmd(backend_semantics.to_mlmd({"flag": True}))
    assert unprotected == {"flag": 1.0}


def test_output_metadata_rewrite(tmp_path):
    path = tmp_path / "output_metadata.json"
    output = {"artifacts": {"blessing": {"artifacts": [{"uri": "u", "metadata": {
        "blessed": 1.0, "ok": True, "gone": None, "tags": ["x"]}}]}}}
    path.write_text(json.dumps(output))
    ep.rewrite_output_metadata(str(path))
    assert json.loads(path.read_text())["artifacts"]["blessing"]["artifacts"][0]["metadata"] == {
        "blessed": 1.0, "ok": {"__value__": True}, "tags": ["x"]}
    before = path.stat().st_mtime_ns
    ep.rewrite_output_metadata(str(path))  # nothing left to change: not rewritten
    assert path.stat().st_mtime_ns == before
    ep.rewrite_output_metadata(str(tmp_path / "missing.json"))


# --- directory markers -------------------------------------------------------------------------------
#
# No file system on this machine has S3's directory markers: TF's ram:// keeps directories as
# entries of their own (removing "ram://x/d/" removes the directory d, not a marker) and the local
# file system has none. So the removal is tested against a small fake object store that lists like
# tensorflow-io's S3 file system (GetChildren: common prefixes and object keys under "<dir>/"; the
# key "<dir>/" itself is not a child; DeleteFile deletes exactly the key it is given).

class FakeObjectStore:
    def __init__(self, bucket, keys):
        self.prefix = f"s3://{bucket}/"
        self.objects = dict(keys)  # key -> bytes
        self.deleted = []

    def _key(self, uri):
        return uri[len(self.prefix):]

    def _children(self, directory):
        prefix = directory.rstrip("/") + "/"
        dirs, files = set(), set()
        for key in self.objects:
            if key.startswith(prefix) and key != prefix:
                head, sep, _ = key[len(prefix):].partition("/")
                (dirs if sep else files).add(head)
        return sorted(dirs), sorted(files)

    def walk(self, uri):
        dirs, files = self._children(self._key(uri))
        yield uri, dirs, files
        for d in dirs:
            yield from self.walk(f"{uri.rstrip('/')}/{d}")

    def remove(self, path):
        key = self._key(path)
        self.deleted.append(key)
        return self.objects.pop(key, None) is not None


def launcher_download(store, key_prefix, local_dir: Path):
    """The launcher's objectstore.DownloadBlob: every key under the prefix becomes a local file."""
    for key in sorted(store.objects):
        if key == key_prefix or key.startswith(key_prefix + "/"):
            local = Path(os.path.normpath(local_dir / os.path.relpath(key, key_prefix)))
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(store.objects[key])


KEYS = {
    "root/Transform/u/transform_graph/": b"",
    "root/Transform/u/transform_graph/transform_fn/": b"",
    "root/Transform/u/transform_graph/transform_fn/saved_model.pb": b"pb",
    "root/Transform/u/transform_graph/transformed_metadata/schema.pbtxt": b"schema",
    "root/Transform/u/transform_graph/empty/": b"",
}


def test_markers_make_the_launcher_download_fail_and_their_removal_fixes_it(tmp_path):
    uri = "s3://bucket/root/Transform/u/transform_graph"
    store = FakeObjectStore("bucket", KEYS)
    with pytest.raises((NotADirectoryError, FileExistsError)):
        launcher_download(store, "root/Transform/u/transform_graph", tmp_path / "before")

    removed = ep.remove_directory_markers(uri, store)
    assert sorted(removed) == [uri + "/", uri + "/transform_fn/"]
    assert "root/Transform/u/transform_graph/empty/" in store.objects  # an empty directory keeps its marker
    assert store.objects["root/Transform/u/transform_graph/transform_fn/saved_model.pb"] == b"pb"
    assert store.objects["root/Transform/u/transform_graph/transformed_metadata/schema.pbtxt"] == b"schema"
    assert all(key.endswith("/") for key in store.deleted)  # only marker keys are ever deleted

    launcher_download(store, "root/Transform/u/transform_graph", tmp_path / "after")
    assert (tmp_path / "after" / "transform_fn" / "saved_model.pb").read_bytes() == b"pb"


def test_local_paths_and_other_schemes_are_left_alone(tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "sub" / "f").write_text("x")

    class Untouchable:
        def walk(self, uri):
            raise AssertionError("walked " + uri)

        remove = walk

    for uri in (str(tmp_path / "out"), "ram://bucket/out", "file:///tmp/out"):
        assert ep.remove_directory_markers(uri, Untouchable()) == []
    assert ep.remove_directory_markers(str(tmp_path / "out")) == []  # the real tf.io.gfile adapter
    assert (tmp_path / "out" / "sub" / "f").read_text() == "x"
