"""Pusher whose pushes to a local filesystem are atomic: a model server never sees half a version.

TFX's Pusher copies the SavedModel file by file into `<base>/<version>/` (saved_model.pb last). A
crash in the middle leaves a numbered directory with part of a model in it, which TF Serving (it
loads every numeric sub-directory of the base) may try to serve. This Pusher copies into a hidden
staging directory next to the destination, `<base>/.incomplete-<version>-<host>-<pid>`, and
renames it to `<base>/<version>` only when the copy is complete. A rename within one filesystem
is atomic, so `<base>/<version>` either does not exist or holds the whole model. A crash leaves at
most a hidden staging directory (no server loads a non-numeric name); the next push on the same
host removes those whose process is gone. The PushedModel artifact is marked pushed only after the
rename.

Object stores (s3://, gs://) have no atomic rename. There the model is copied into
`<base>/<version>/` with saved_model.pb last (a loader finds no model before every variable is in
place), the copy's digest is checked against the source, and only then is the digest sidecar
written: a version without its `.N.sha256` is incomplete, and is never registered (the Registrar
reads the push's outcome) nor matched as "unchanged". A failed copy deletes what it wrote.

On every destination, a model whose digest equals an already pushed version's is not pushed again
(`unchanged`), so a rerun on unchanged data never becomes a duplicate registry version.

Either way nothing is pushed unless the Evaluator blessed the model (`model_blessing`) and, when the
pipeline wires one, the InfraValidator did too (`infra_blessing`, `blessed` = 1): TFX's
CheckBlessing decides, before anything is copied.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.parse

from absl import logging
from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.digest import saved_model_digest

STAGING_PREFIX = ".incomplete-"
# Custom property of the PushedModel: 1 when the same model was pushed before and is reused.
PROP_UNCHANGED = "unchanged"


def is_local_path(path: str) -> bool:
    return urllib.parse.urlparse(path).scheme in ("", "file") and "://" not in path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_staging(base: str) -> list:
    """Delete staging directories under base left by dead processes of this host; returns them."""
    removed = []
    if not os.path.isdir(base):
        return removed
    host = socket.gethostname()
    for name in os.listdir(base):
        if not name.startswith(STAGING_PREFIX):
            continue
        # .incomplete-<version>-<host>-<pid>; the host name may itself contain '-'.
        rest = name[len(STAGING_PREFIX):]
        _, _, owner = rest.partition("-")
        owner_host, _, pid = owner.rpartition("-")
        if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)) and int(pid) != os.getpid():
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed.append(name)
    return removed


def copy_model(source: str, target: str) -> None:
    """Copy a SavedModel directory tree (the step a crash may interrupt)."""
    shutil.copytree(source, target)


def publish_atomically(source: str, base: str, version: str) -> str:
    """Copy source into base/<version> so that the directory appears complete or not at all.

    Returns the final path. If base/<version> already exists the version number is increased
    (a second push in the same second) rather than writing into an existing version.
    """
    os.makedirs(base, exist_ok=True)
    for name in remove_abandoned_staging(base):
        logging.warning("Pusher: removed %s, left by an interrupted push", os.path.join(base, name))
    number = int(version)
    while os.path.exists(os.path.join(base, str(number))):
        number += 1
    staging = os.path.join(base, f"{STAGING_PREFIX}{number}-{socket.gethostname()}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        copy_model(source, staging)
        while True:
            final = os.path.join(base, str(number))
            try:
                os.rename(staging, final)  # atomic; fails rather than replace a non-empty directory
                break
            except OSError:
                if not os.path.exists(final):
                    raise
                number += 1  # another pusher took this version meanwhile
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


DIGEST_SUFFIX = ".sha256"


def digest_file(base: str, version: str) -> str:
    """Where a pushed version's digest is kept: `<base>/.<version>.sha256` (hidden, so a model
    server that loads every numeric sub-directory never sees it)."""
    return os.path.join(base, f".{version}{DIGEST_SUFFIX}")


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if "://" in base else os.path.join(base, name)


def pushed_copy_of(base: str, digest: str):
    """The path of an already (completely) pushed version with this digest, or None; local paths
    and object stores alike."""
    from tfx.dsl.io import fileio

    if not fileio.isdir(base):
        return None
    names = [n.rstrip("/") for n in fileio.listdir(base)]
    for name in sorted((n for n in names if n.isdigit()), key=lambda n: (len(n), n)):
        recorded = _join(base, f".{name}{DIGEST_SUFFIX}") if "://" in base else digest_file(base, name)
        if fileio.exists(recorded):
            with fileio.open(recorded, "r") as f:
                if f.read().strip() == digest:
                    return _join(base, name)
    return None


def push_to_object_store(source: str, base: str, version: str, digest: str) -> str:
    """Copy a SavedModel to `<base>/<version>` on an object store (saved_model.pb last), check the
    copy's digest, then write the digest sidecar; on any failure remove what was written."""
    from tfx.dsl.io import fileio

    number = int(version)
    while fileio.exists(_join(base, str(number))):
        number += 1
    final = _join(base, str(number))
    files = []
    for root, _, names in fileio.walk(source):
        files += [_join(root, n) if "://" in root else os.path.join(root, n) for n in names]
    files.sort(key=lambda f: (os.path.basename(f) == "saved_model.pb", f))
    try:
        for path in files:
            target = _join(final, path[len(source):].lstrip("/"))
            fileio.makedirs(target.rsplit("/", 1)[0])
            fileio.copy(path, target, overwrite=True)
        copied = saved_model_digest(final)
        if copied != digest:
            raise IOError(f"the copy at {final} has digest {copied}, the model {digest}")
        with fileio.open(_join(base, f".{number}{DIGEST_SUFFIX}"), "w") as f:
            f.write(digest + "\n")
    except BaseException:
        if fileio.exists(final):
            fileio.rmtree(final)
        raise
    return final


class AtomicPusherExecutor(pusher_executor.Executor):
    """The stock Pusher executor with an atomic copy into a local serving directory."""

    def Do(self, input_dict, output_dict, exec_properties):
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        fs = destination.filesystem
        if destination.WhichOneof("destination") != "filesystem":
            return super().Do(input_dict, output_dict, exec_properties)
        if fs.versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"versioning {fs.versioning} is not supported")

        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        # Not pushed until the version directory is in place.
        self._MarkNotPushed(model_push)
        # Model blessing and infra blessing (components.infra_validator), as the stock executor checks.
        if not self.CheckBlessing(input_dict):
            return
        model_path = self.GetModelPath(input_dict)
        digest = saved_model_digest(model_path)
        already = pushed_copy_of(fs.base_directory, digest)
        if already is not None:
            # A rerun whose Trainer came from cache: the same model is served already; a second copy
            # would only become a second registry version of it.
            logging.info("Model unchanged: already pushed to %s.", already)
            io_utils.copy_dir(model_path, model_push.uri)
            self._MarkPushed(model_push, pushed_destination=already, pushed_version=os.path.basename(already))
            model_push.set_int_custom_property(PROP_UNCHANGED, 1)
            return
        # Archive copy in the artifact first, so the serving directory is the last thing written.
        io_utils.copy_dir(model_path, model_push.uri)
        if is_local_path(fs.base_directory):
            final = publish_atomically(model_path, fs.base_directory, str(int(time.time())))
            version = os.path.basename(final)
            with open(digest_file(fs.base_directory, version), "w", encoding="utf-8") as f:
                f.write(digest + "\n")
        else:
            final = push_to_object_store(model_path, fs.base_directory, str(int(time.time())), digest)
            version = final.rstrip("/").rsplit("/", 1)[-1]
        logging.info("Model pushed to %s (version %s).", final, version)
        self._MarkPushed(model_push, pushed_destination=final, pushed_version=version)
        model_push.set_int_custom_property(PROP_UNCHANGED, 0)


class AtomicPusher(Pusher):
    """Pusher (same inputs, outputs and properties) whose local pushes are atomic."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPusherExecutor)
