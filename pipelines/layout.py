"""Where local state lives under one home directory (metadata store, pipeline roots, serving,
logs, locks, reports). Its own module, below both the runner and the run readers, so that reading
runs back never imports the runner."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from components import locks

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

    def report_dir(self, task: str, run_id: str) -> Path:
        """<home>/reports/<task>/<run id with ':' replaced by '-'>/ (for any run, local or Kubeflow)."""
        return self.home / "reports" / task / run_id.replace(":", "-")


def lock_holder(layout: LocalLayout, task: str) -> Optional[dict]:
    """The holder record of the task's lock (pid, host, since, run_id) while a run holds it, None
    when no run does."""
    return locks.holder_of(layout.lock_path(task))
