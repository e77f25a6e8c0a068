"""Run a task's pipeline on this machine: SQLite metadata and local files under one home directory."""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from components import locks, metadata
from pipelines.config import TaskConfig
from pipelines.layout import DEFAULT_HOME, HOME_ENV, LocalLayout, lock_holder  # noqa: F401 - re-exported for callers
from pipelines.outcome import RunOutcome, outcome_of

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


# How long to retry before refusing (covers `mlops runs` probing the lock at the same moment).
LOCK_RETRY_S = 2.0


@contextlib.contextmanager
def task_lock(layout: "LocalLayout", task: str):
    """Hold `<home>/locks/<task>.lock` for the duration (yields the held lock, whose holder record
    can be extended), or raise RunLockedError naming the holder."""
    try:
        with locks.file_lock(layout.lock_path(task), wait_s=LOCK_RETRY_S) as held:
            yield held
    except locks.LockHeld as exc:
        raise RunLockedError(
            f"`mlops run {task}` is already running on {layout.home}: {locks.describe(exc.holder)}; "
            f"wait for it to finish (lock {exc.path})"
        ) from None


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


@contextlib.contextmanager
def _output_into(log_file: Optional[Path]):
    """While the pipeline runs, what the libraries write goes to the run's log file, not the
    terminal: the process's stderr (TensorFlow's C++ log, Beam's and Keras's warnings, tracebacks
    they print and swallow) and Python's sys.stdout (keras_tuner's search-space and results
    summaries, Keras progress bars). Progress lines still reach the terminal (_on_terminal); the
    run's outcome says where the log is."""
    terminal = sys.stdout
    if not log_file:
        yield
        return
    sys.stderr.flush()
    terminal.flush()
    saved = os.dup(2)
    with open(log_file, "ab") as target, open(log_file, "a", encoding="utf-8", buffering=1) as text:
        os.dup2(target.fileno(), 2)
        sys.stdout = text
        try:
            yield
        finally:
            sys.stdout = terminal
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _on_terminal(on_event: Callable[[str, str], None], terminal) -> Callable[[str, str], None]:
    """on_event with sys.stdout pointing at the terminal while it runs (it prints progress lines).
    Events come from the thread that runs the components, between their executors."""
    def forward(node: str, event: str) -> None:
        current, sys.stdout = sys.stdout, terminal
        try:
            on_event(node, event)
        finally:
            sys.stdout = current

    return forward


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
    report: bool = True,
    profile: str = "",
) -> RunOutcome:
    """Build the task's pipeline, run it with TFX's LocalDagRunner and return what happened.

    Checks the model registry first (RegistryError when it cannot be reached). Holds the task's
    lock (RunLockedError when another process runs the task on this home). A
    failing component ends the run with the failure in the outcome (`error`, after the metadata
    store recorded it); SIGTERM/SIGINT end it with `interrupted_by`, the executions they cut short
    marked CANCELED. With `report`, the run report is written (a problem with it is a warning).
    The run's identity (data version, code commit, config hash; pipelines.run_identity) is recorded
    on its context in ML Metadata, with `profile`, the task profile the config came from.
    """
    from components import registry

    layout.home.mkdir(parents=True, exist_ok=True)
    # The Baseline and the Registrar need the registry: a dead server fails here, in seconds, before
    # anything is trained or pushed (registry.RegistryError).
    registry.Registry(registry.resolve_uri(layout.home)).check()
    with task_lock(layout, task.name) as held, _interruptible():
        run_id = new_run_id()
        held.note(run_id=run_id)
        outcome = _run_locked(task, run_id, layout=layout, data_root=data_root, data_version=data_version,
                              enable_cache=enable_cache, on_event=on_event, log_file=log_file,
                              profile=profile)
        if report:
            try:
                from pipelines.report import write_report
                from pipelines.runs.local import LocalSource

                with LocalSource(layout) as source:
                    outcome.report_path = str(write_report(source, task.name, run_id, home=layout.home,
                                                           task_config=task))
            except Exception as exc:  # a report problem must never fail the run
                outcome.warnings.append(f"could not write the run report: {type(exc).__name__}: {exc}")
        return outcome


def _run_locked(task, run_id, *, layout, data_root, data_version, enable_cache, on_event, log_file,
                profile="") -> RunOutcome:
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.portable import runtime_parameter_utils
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from components import registry
    from components.code_version import code_version
    from pipelines import factory, lineage, nodes, run_identity

    code = code_version(Path(factory.__file__).resolve().parent.parent)
    try:
        identity, identity_error = run_identity.current(task, data_root=data_root, data_version=data_version,
                                                        code=code, profile=profile), None
    except Exception as exc:  # never fails the run; `--if-changed` then finds no identity on it
        identity, identity_error = None, f"{type(exc).__name__}: {exc}"
    pipeline = factory.create_pipeline(
        task,
        pipeline_root=str(layout.pipeline_root(task.name)),
        data_root=data_root,
        serving_root=str(layout.serving_root),
        data_version=data_version,
        enable_cache=enable_cache,
        metadata_connection_config=metadata.sqlite_config(str(layout.metadata_path)),
        # Embedded registry <home>/mlflow.db unless MLFLOW_TRACKING_URI names a server.
        registry_uri=None if os.environ.get(registry.TRACKING_URI_ENV) else registry.default_uri(layout.home),
        code_version=code,
    )
    ir = never_cached(compiler.Compiler().compile(pipeline), nodes.BASELINE)
    runtime_parameter_utils.substitute_runtime_parameter(ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})

    tfx_logger = logging.getLogger("absl")
    handlers = []
    if on_event:
        handlers.append(ProgressHandler(_on_terminal(on_event, sys.stdout)))
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(file_handler)
    old_propagate = tfx_logger.propagate
    tfx_logger.propagate = not log_file
    for handler in handlers:
        tfx_logger.addHandler(handler)
    error = interrupted_by = None
    try:
        with _pinned_level(tfx_logger, logging.INFO), _output_into(log_file):
            LocalDagRunner().run_with_ir(ir)
    except RunInterrupted as exc:
        interrupted_by = signal.Signals(exc.signum).name
        canceled = _cancel_unfinished(layout.metadata_path, run_id, interrupted_by)
        tfx_logger.error("run %s %s; canceled: %s", run_id, exc, ", ".join(canceled) or "nothing")
    except Exception as exc:  # a component failed: the metadata store has recorded it
        error = f"{type(exc).__name__}: {exc}"
        tfx_logger.exception("run %s failed", run_id)
        error = _close_after_failure(layout, run_id, error)
    finally:
        for handler in handlers:
            tfx_logger.removeHandler(handler)
            handler.close()
        tfx_logger.propagate = old_propagate

    store = metadata.open_store(str(layout.metadata_path))
    record = lineage.load_run(store, nodes.pipeline_name(task.name), run_id)
    outcome = outcome_of(record, task.name) if record else RunOutcome(task=task.name, run_id=run_id)
    outcome.error, outcome.interrupted_by = error, interrupted_by
    outcome.log_file = str(log_file) if log_file else None
    try:
        if identity is not None:
            outcome.config_hash = identity.config_hash
            run_identity.record(layout.metadata_path, run_id, identity)
    except Exception as exc:
        identity_error = f"{type(exc).__name__}: {exc}"
    if identity_error:
        outcome.warnings.append(f"could not record the run's identity: {identity_error}")
    if record is None and not (error or interrupted_by):
        outcome.error = "the run recorded nothing in the metadata store"
    return outcome


def never_cached(ir, *node_ids: str):
    """The compiled pipeline with caching off for these nodes: the Baseline has no inputs and fixed
    properties, so a cached execution would hand every later run the first run's answer, while
    the registry it reads changes between runs."""
    for node in ir.nodes:
        if node.pipeline_node.node_info.id in node_ids:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
    return ir


def _cancel_unfinished(metadata_path: Path, run_id: str, reason: str, failed: bool = False) -> list:
    """Mark the run's executions that are still NEW/RUNNING as CANCELED (TFX leaves them RUNNING
    when the launcher is interrupted), or FAILED; returns their ids."""
    from ml_metadata.proto import metadata_store_pb2

    store = metadata.open_store(str(metadata_path))
    context = store.get_context_by_type_and_name(metadata.RUN_CONTEXT_TYPE, run_id)
    if context is None:
        return []
    unfinished = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
    executions = [e for e in store.get_executions_by_context(context.id) if e.last_known_state in unfinished]
    for execution in executions:
        if failed:
            execution.last_known_state = metadata_store_pb2.Execution.FAILED
            execution.custom_properties["failed_because"].string_value = reason
        else:
            execution.last_known_state = metadata_store_pb2.Execution.CANCELED
            execution.custom_properties["interrupted_by"].string_value = reason
    if executions:
        store.put_executions(executions)
    return [str(e.id) for e in executions]


def _close_after_failure(layout: "LocalLayout", run_id: str, error: str) -> str:
    """The run's error as the summary prints it. A full disk is named with the home and the fix (TFX
    and SQLite word it their own way), and the executions it left RUNNING (TFX could not write their
    failure) are marked FAILED once space is freed, so `mlops runs` does not call it interrupted."""
    from pipelines.cli import DISK_FULL

    if not any(sign in error for sign in DISK_FULL):
        return error
    sign = next(sign for sign in DISK_FULL if sign in error)
    try:
        _cancel_unfinished(layout.metadata_path, run_id, "disk full", failed=True)
    except Exception:  # the disk is still full: `mlops runs` will show it as interrupted
        pass
    return f"cannot write {layout.home}: {sign}; free some space, or pass a --home on another disk"


def run_until(task: TaskConfig, home: Path, data_root: Path, last_node: str):
    """The task's real pipeline (the factory) run by TFX's LocalDagRunner up to last_node only, in
    `home` (metadata, artifacts, an embedded registry), without the lock, summary or report of
    run_pipeline: for benchmarks and tests of the components before the Trainer. Returns the run's
    lineage record."""
    from tfx.dsl.compiler import compiler
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.proto.orchestration import pipeline_pb2

    from pipelines import factory, lineage, nodes

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    pipeline = factory.create_pipeline(
        task, pipeline_root=str(home / "pipelines"), data_root=str(data_root), serving_root=str(home / "serving"),
        data_version={"md5": "untracked", "dirty": True},
        metadata_connection_config=metadata.sqlite_config(str(home / "metadata.sqlite")),
        registry_uri="sqlite:///" + str(home / "mlflow.db"),
    )
    options = pipeline_pb2.RunOptions()
    options.partial_run.to_nodes.append(last_node)
    options.partial_run.snapshot_settings.latest_pipeline_run_strategy.SetInParent()
    LocalDagRunner().run_with_ir(compiler.Compiler().compile(pipeline), run_options=options)
    store = metadata.open_store(str(home / "metadata.sqlite"))
    name = nodes.pipeline_name(task.name)
    return lineage.load_run(store, name, lineage.list_run_ids(store, name)[0])
