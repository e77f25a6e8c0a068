"""Run a task's pipeline on this machine: SQLite metadata and local files under one home directory."""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from pipelines.config import TaskConfig

HOME_ENV = "MLOPS_HOME"
DEFAULT_HOME = ".mlops"


@dataclass(frozen=True)
class LocalLayout:
    """Where a local run keeps things, all under one home directory."""

    home: Path

    @classmethod
    def resolve(cls, home: Optional[str] = None) -> "LocalLayout":
        chosen = home or os.environ.get(HOME_ENV) or os.path.join(os.getcwd(), DEFAULT_HOME)
        return cls(Path(chosen).resolve())

    @property
    def metadata_path(self) -> Path:
        return self.home / "metadata.sqlite"

    def pipeline_root(self, task: str) -> Path:
        return self.home / "pipelines" / task

    @property
    def serving_root(self) -> Path:
        return self.home / "serving"

    def logs_dir(self, task: str) -> Path:
        return self.home / "logs" / task

    def lock_path(self, task: str) -> Path:
        return self.home / "locks" / f"{task}.lock"


# ---- one run per task and home at a time

class RunLockedError(RuntimeError):
    """Another process is running this task's pipeline on the same home."""


class RunInterrupted(BaseException):
    """The run received SIGTERM or SIGINT. A BaseException, like KeyboardInterrupt, so that library
    code catching Exception (AutoGraph, Keras callbacks, TFX's launcher) cannot swallow it; the
    executions it cut short are then marked CANCELED in ML Metadata (see _cancel_unfinished)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


# Lock files this process holds: path -> [fd, depth] (the lock is re-entrant within a process).
_held_locks: dict = {}
# How long to retry before refusing (covers `mlops runs` probing the lock at the same moment).
LOCK_RETRY_S = 2.0


def describe_holder(holder: Mapping[str, Any]) -> str:
    if not holder:
        return "another process (no holder recorded yet)"
    text = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
    if holder.get("run_id"):
        text += f", run {holder['run_id']}"
    return text


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}


def _write_holder(fd: int, holder: Mapping[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(dict(holder)).encode(), 0)


@contextlib.contextmanager
def task_lock(layout: "LocalLayout", task: str):
    """Hold `<home>/locks/<task>.lock` (fcntl.flock) for the duration, or raise RunLockedError
    naming the holder. The kernel releases the lock when the process dies, even by SIGKILL, so a
    crashed run never blocks the next one. Re-entrant within one process."""
    path = layout.lock_path(task)
    key = str(path)
    if key in _held_locks:
        _held_locks[key][1] += 1
        try:
            yield
        finally:
            _held_locks[key][1] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_RETRY_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RunLockedError(
                        f"`mlops run {task}` is already running on {layout.home}: {describe_holder(_read_holder(fd))}; "
                        f"wait for it to finish (lock {path})"
                    ) from None
                time.sleep(0.1)
        _write_holder(fd, {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
        })
        _held_locks[key] = [fd, 1]
        try:
            yield
        finally:
            del _held_locks[key]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _note_run_id(layout: "LocalLayout", task: str, run_id: str) -> None:
    """Add the run id to the holder record of a lock this process holds."""
    held = _held_locks.get(str(layout.lock_path(task)))
    if held:
        _write_holder(held[0], {**_read_holder(held[0]), "run_id": run_id})


def lock_holder(layout: "LocalLayout", task: str) -> Optional[dict]:
    """The holder record of the task's lock (pid, host, started, run_id) while a run holds it,
    None when no run does. Never blocks and never creates the lock file."""
    path = layout.lock_path(task)
    if str(path) in _held_locks:
        return _read_holder(_held_locks[str(path)][0])
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def _interruptible():
    """While the pipeline runs, SIGTERM and SIGINT raise RunInterrupted in the main thread, so the
    running component can be recorded as canceled (not left 'running') and the caller can report
    it. A second signal gets the previous handler (by default: terminate at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, _frame):
        for sig, old in previous.items():
            signal.signal(sig, old)
        raise RunInterrupted(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# "Component X is running." / "is finished." come from TFX's LocalDagRunner;
# "A cached execution N is used." from its launcher.
_RUNNING = re.compile(r"^Component (\S+) is running\.$")
_FINISHED = re.compile(r"^Component (\S+) is finished\.$")
_CACHED = re.compile(r"^A cached execution \d+ is used\.$")


class ProgressHandler(logging.Handler):
    """Turns TFX's log lines into on_event(node_id, 'running'|'cached'|'finished') calls."""

    def __init__(self, on_event: Callable[[str, str], None]):
        super().__init__(level=logging.INFO)
        self.on_event = on_event
        self.current: Optional[str] = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed third-party log record must not break the run
            return
        if m := _RUNNING.match(message):
            self.current = m.group(1)
            self.on_event(self.current, "running")
        elif _CACHED.match(message) and self.current:
            self.on_event(self.current, "cached")
        elif m := _FINISHED.match(message):
            self.on_event(m.group(1), "finished")
            self.current = None


@contextlib.contextmanager
def _pinned_level(logger: logging.Logger, level: int):
    """Keep `logger` at `level` while the pipeline runs.

    Components call absl.logging.set_verbosity() (TF, Beam), which would otherwise silence the
    INFO lines that progress reporting and the run log rely on.
    """
    old_level = logger.level
    logger.setLevel(level)
    logger.setLevel = lambda _level: None  # instance attribute shadows Logger.setLevel
    try:
        yield
    finally:
        del logger.setLevel
        logger.setLevel(old_level)


def new_run_id() -> str:
    return datetime.datetime.now().isoformat()


def run_pipeline(
    task: TaskConfig,
    *,
    layout: LocalLayout,
    data_root: str,
    data_version: Optional[Mapping[str, Any]] = None,
    enable_cache: bool = True,
    on_event: Optional[Callable[[str, str], None]] = None,
    log_file: Optional[Path] = None,
) -> str:
    """Build the task's pipeline, run it with TFX's LocalDagRunner and return the run id.

    Holds the task's lock (RunLockedError when another process runs the task on this home).
    Exceptions from a failing component propagate (after the metadata store recorded the failure);
    SIGTERM/SIGINT raise RunInterrupted after the executions they cut short are marked CANCELED.
    """
    layout.home.mkdir(parents=True, exist_ok=True)
    with task_lock(layout, task.name), _interruptible():
        return _run_locked(
            task, layout=layout, data_root=data_root, data_version=data_version, enable_cache=enable_cache,
            on_event=on_event, log_file=log_file,
        )


def _run_locked(task, *, layout, data_root, data_version, enable_cache, on_event, log_file) -> str:
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.portable import runtime_parameter_utils
    from tfx.orchestration import metadata as tfx_metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipelines import factory, registry

    pipeline = factory.create_pipeline(
        task,
        pipeline_root=str(layout.pipeline_root(task.name)),
        data_root=data_root,
        serving_root=str(layout.serving_root),
        data_version=data_version,
        enable_cache=enable_cache,
        metadata_connection_config=tfx_metadata.sqlite_metadata_connection_config(
            str(layout.metadata_path)
        ),
        # Embedded registry <home>/mlflow.db unless MLFLOW_TRACKING_URI names a server.
        registry_uri=None if os.environ.get(registry.TRACKING_URI_ENV) else registry.default_uri(layout.home),
        code_version=registry.code_version(Path(factory.__file__).resolve().parent.parent),
    )
    ir = compiler.Compiler().compile(pipeline)
    run_id = new_run_id()
    runtime_parameter_utils.substitute_runtime_parameter(ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    _note_run_id(layout, task.name, run_id)

    tfx_logger = logging.getLogger("absl")
    handlers = []
    if on_event:
        handlers.append(ProgressHandler(on_event))
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(file_handler)
    old_propagate = tfx_logger.propagate
    tfx_logger.propagate = not log_file
    for handler in handlers:
        tfx_logger.addHandler(handler)
    try:
        with _pinned_level(tfx_logger, logging.INFO):
            LocalDagRunner().run_with_ir(ir)
    except RunInterrupted as exc:
        canceled = _cancel_unfinished(layout.metadata_path, run_id, signal.Signals(exc.signum).name)
        logging.getLogger("absl").error("run %s %s; canceled: %s", run_id, exc, ", ".join(canceled) or "nothing")
        raise
    finally:
        for handler in handlers:
            tfx_logger.removeHandler(handler)
            handler.close()
        tfx_logger.propagate = old_propagate
    return run_id


def _cancel_unfinished(metadata_path: Path, run_id: str, reason: str) -> list:
    """Mark the run's executions that are still NEW/RUNNING as CANCELED (TFX leaves them RUNNING
    when the launcher is interrupted); returns their ids."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    from pipelines import lineage

    store = metadata_store.MetadataStore(lineage.sqlite_config(str(metadata_path)))
    context = store.get_context_by_type_and_name(lineage.RUN_CONTEXT_TYPE, run_id)
    if context is None:
        return []
    unfinished = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
    executions = [e for e in store.get_executions_by_context(context.id) if e.last_known_state in unfinished]
    for execution in executions:
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
        execution.custom_properties["interrupted_by"].string_value = reason
    if executions:
        store.put_executions(executions)
    return [str(e.id) for e in executions]
