"""DataSnapshot: the first step of a Kubeflow run, which puts exactly the DVC version stamped on the
package into the run's storage, so ExampleGen reads that version and nothing else.

Locally, `data/` is checked against `data.dvc` before a run. On the cluster there is no checkout:
the package names the md5 of `data.dvc` (a `.dir` object) and the DVC remote (an S3 bucket that
`dvc push` fills; Terraform creates it). This step reads the remote in DVC 3's content-addressed
layout, `<remote>/files/md5/<first 2 hex>/<rest>`: the `.dir` object lists every file (relpath and
md5), and each file is copied from its own md5 object to `<destination>/<relpath>`, its md5
checked on the way. Only the task's own sub-directory is copied. The destination is keyed by the
md5, so another version can never be read under this one's name, and a cache hit (same md5,
same destination) is always right. A `.complete` object, written last, marks a finished copy:
a later run of the same version copies nothing.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Dict, List

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

COMPLETE_MARKER = ".complete"
PROP_MD5, PROP_FILES = "dvc_md5", "files"


class DataSnapshot(types.Artifact):
    """The data of one DVC version, materialised for a run (uri: the directory ExampleGen reads)."""

    # Importable by its schema title on Kubeflow (components/__init__.py).
    TYPE_NAME = "components.DataSnapshot"


class DataVersionError(RuntimeError):
    """The remote does not hold the stamped version, or holds different bytes under its md5."""


def object_path(remote: str, md5: str) -> str:
    """DVC 3's remote layout: files/md5/<2 hex>/<rest>."""
    return posixpath.join(remote.rstrip("/"), "files", "md5", md5[:2], md5[2:])


def _read(path: str) -> bytes:
    with fileio.open(path, "rb") as f:
        return f.read()


def manifest(remote: str, md5: str) -> List[Dict[str, str]]:
    """The `.dir` object's entries ({"md5", "relpath"}) of a DVC directory version."""
    if not md5.endswith(".dir"):
        raise DataVersionError(f"data version {md5!r} is not a DVC directory (.dir) md5: see data.dvc")
    path = object_path(remote, md5)
    if not fileio.exists(path):
        raise DataVersionError(f"the DVC remote {remote} has no data version {md5}: run `dvc push` "
                               f"to that remote from the commit the package was compiled at")
    return json.loads(_read(path).decode("utf-8"))


def materialise(remote: str, md5: str, destination: str, subdir: str) -> int:
    """Copy the files of version `md5` under `subdir/` to `destination`; returns the files copied
    (0 when a complete copy is already there)."""
    marker = posixpath.join(destination, COMPLETE_MARKER)
    if fileio.exists(marker) and _read(marker).decode("utf-8").strip() == md5:
        return 0
    prefix = subdir.strip("/") + "/"
    entries = [e for e in manifest(remote, md5) if e["relpath"].startswith(prefix)]
    if not entries:
        raise DataVersionError(f"data version {md5} has no files under {prefix}")
    for entry in entries:
        content = _read(object_path(remote, entry["md5"]))
        if hashlib.md5(content).hexdigest() != entry["md5"]:
            raise DataVersionError(f"{entry['relpath']}: the remote's bytes do not match md5 {entry['md5']}")
        target = posixpath.join(destination, entry["relpath"])
        fileio.makedirs(posixpath.dirname(target))
        with fileio.open(target, "wb") as f:
            f.write(content)
    with fileio.open(marker, "w") as f:
        f.write(md5 + "\n")
    return len(entries)


class DataSnapshotSpec(types.ComponentSpec):
    PARAMETERS = {
        "remote": ExecutionParameter(type=str),
        "md5": ExecutionParameter(type=str),
        "destination": ExecutionParameter(type=str),
        "subdir": ExecutionParameter(type=str),
    }
    INPUTS: Dict[str, ChannelParameter] = {}
    OUTPUTS = {"snapshot": ChannelParameter(type=DataSnapshot)}


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        remote, md5 = exec_properties["remote"], exec_properties["md5"]
        destination, subdir = exec_properties["destination"], exec_properties["subdir"]
        copied = materialise(remote, md5, destination, subdir)
        logging.info("DataSnapshot: dvc md5 %s -> %s (%s)", md5, destination,
                     f"{copied} file(s) copied" if copied else "already complete")
        [snapshot] = output_dict["snapshot"]
        snapshot.set_string_custom_property(PROP_MD5, md5)
        snapshot.set_int_custom_property(PROP_FILES, copied)
        fileio.makedirs(snapshot.uri)
        with fileio.open(posixpath.join(snapshot.uri, "source.json"), "w") as f:
            f.write(json.dumps({"remote": remote, "md5": md5, "destination": destination}))


class DataSnapshotComponent(base_component.BaseComponent):
    """Materialises one DVC data version for a Kubeflow run (see the module docstring)."""

    SPEC_CLASS = DataSnapshotSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, remote: str, md5: str, destination: str, subdir: str):
        super().__init__(spec=DataSnapshotSpec(remote=remote, md5=md5, destination=destination, subdir=subdir,
                                               snapshot=types.Channel(type=DataSnapshot)))


def snapshot_root(pipeline_root: str, md5: str) -> str:
    """Where a version is materialised: keyed by its md5 under the pipeline root."""
    return f"{pipeline_root.rstrip('/')}/data-versions/{md5.replace('.dir', '')}"
