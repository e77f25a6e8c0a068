"""Carry the DVC data version into ExampleGen's output, so lineage can name the data a model saw."""
from __future__ import annotations

import json
from typing import Any, Mapping

from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.proto import example_gen_pb2

# Custom properties written on the Examples artifact.
PROP_DATA_MD5 = "dvc_data_md5"
PROP_DATA_DIRTY = "dvc_data_dirty"
PROP_DATA_TARGET = "dvc_target"


def to_custom_config(data_version: Mapping[str, Any]) -> example_gen_pb2.CustomConfig:
    """Pack {'md5': ..., 'dirty': bool, 'target': ...} into ExampleGen's CustomConfig."""
    struct = struct_pb2.Struct()
    struct.update({"data_version": dict(data_version)})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def from_exec_properties(exec_properties: Mapping[str, Any]) -> dict:
    """Read the data version back from ExampleGen's exec properties ({} when absent)."""
    raw = exec_properties.get("custom_config")
    if not raw:
        return {}
    config = example_gen_pb2.CustomConfig()
    if isinstance(raw, str):
        json_format.Parse(raw, config)
    else:
        config.CopyFrom(raw)
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        return {}
    return json.loads(json_format.MessageToJson(struct)).get("data_version", {})


def stamp(artifact, data_version: Mapping[str, Any]) -> None:
    """Write the data version onto an Examples artifact as custom properties."""
    artifact.set_string_custom_property(PROP_DATA_MD5, str(data_version.get("md5", "unknown")))
    artifact.set_int_custom_property(PROP_DATA_DIRTY, int(bool(data_version.get("dirty", False))))
    artifact.set_string_custom_property(PROP_DATA_TARGET, str(data_version.get("target", "")))
