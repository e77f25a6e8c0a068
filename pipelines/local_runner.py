"""Run a task's pipeline on this machine: SQLite metadata and local files under one home directory."""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
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

    Exceptions from a failing component propagate (after the metadata store recorded the failure).
    """
    from tfx.dsl.compiler import compiler, constants
    from tfx.orchestration.portable import runtime_parameter_utils
    from tfx.orchestration import metadata as tfx_metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipelines import factory, registry

    layout.home.mkdir(parents=True, exist_ok=True)
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
    finally:
        for handler in handlers:
            tfx_logger.removeHandler(handler)
            handler.close()
        tfx_logger.propagate = old_propagate
    return run_id
