"""The DVC data version: read it from a checkout, and carry it into ExampleGen's output so lineage
can name the data a model saw."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, Mapping, Optional


# Custom properties written on the Examples artifact.
PROP_DATA_MD5 = "dvc_data_md5"
PROP_DATA_DIRTY = "dvc_data_dirty"
PROP_DATA_TARGET = "dvc_target"


def to_custom_config(data_version: Mapping[str, Any]):
    """Pack {'md5': ..., 'dirty': bool, 'target': ...} into ExampleGen's CustomConfig."""
    from google.protobuf import any_pb2, struct_pb2
    from tfx.proto import example_gen_pb2

    struct = struct_pb2.Struct()
    struct.update({"data_version": dict(data_version)})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


def from_exec_properties(exec_properties: Mapping[str, Any]) -> dict:
    """Read the data version back from ExampleGen's exec properties ({} when absent)."""
    from google.protobuf import json_format, struct_pb2
    from tfx.proto import example_gen_pb2

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


# --------------------------------------------------------------------------------------------
# The version of a checkout's data/ (data.dvc)


def repo_root(start: Path | None = None) -> Path:
    """The directory holding data.dvc (searching upwards from start or the cwd)."""
    here = Path(start or os.getcwd()).resolve()
    for candidate in [here, *here.parents]:
        if (candidate / "data.dvc").exists():
            return candidate
    raise FileNotFoundError(f"no data.dvc found in {here} or its parents; run mlops from the project checkout")


def tracked_md5(root: Path) -> str:
    """The md5 that data.dvc records for data/ (DVC's directory hash, e.g. '1f3e….dir')."""
    import yaml

    spec = yaml.safe_load((root / "data.dvc").read_text())
    outs = spec.get("outs") or []
    if not outs or "md5" not in outs[0]:
        raise ValueError(f"{root / 'data.dvc'} records no md5 for its output")
    return outs[0]["md5"]


def data_status(root: Path) -> dict:
    """{'md5': tracked md5, 'dirty': bool, 'changes': {...}} comparing data/ with data.dvc."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        changes = repo.status(targets=[str(root / "data.dvc")])
    return {
        "target": "data.dvc",
        "md5": tracked_md5(root),
        "dirty": bool(changes),
        "changes": changes,
    }


def dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the dvc CLI that belongs to this interpreter's environment."""
    import shutil
    import sys

    exe = Path(sys.executable).with_name("dvc")
    cmd = [str(exe) if exe.exists() else (shutil.which("dvc") or "dvc"), *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True)


UNTRACKED = "untracked"


def version_of(data_root: Path) -> Dict[str, Any]:
    """The DVC version of data_root when it is the data/ tracked by data.dvc, else 'untracked'
    (tests, benchmarks and ad-hoc data live outside it and are no DVC version)."""
    try:
        root = repo_root(data_root)
    except FileNotFoundError:
        return {"md5": UNTRACKED, "dirty": True, "target": str(data_root)}
    if (root / "data").resolve() != Path(data_root).resolve():
        return {"md5": UNTRACKED, "dirty": True, "target": str(data_root)}
    status = data_status(root)
    return {"md5": status["md5"], "dirty": status["dirty"], "target": "data.dvc"}


def recorded_version(*starts: Optional[Path]) -> Dict[str, Any]:
    """The version data.dvc records (no look at data/ itself: e.g. when compiling for a cluster whose
    copy of the data this machine cannot see). Looks for data.dvc upwards from each start in turn."""
    for start in starts:
        try:
            root = repo_root(start)
        except FileNotFoundError:
            continue
        return {"md5": tracked_md5(root), "dirty": False, "target": "data.dvc"}
    return {"md5": UNTRACKED, "dirty": True, "target": "none"}
