"""Runs made on this machine: the home's ML Metadata store (read-only; never creates one)."""
from __future__ import annotations

from typing import Dict, List, Optional

from components import metadata
from pipelines import lineage, nodes
from pipelines.layout import LocalLayout, lock_holder
from pipelines.runs.base import UNFINISHED, InspectError, RunSource


class LocalSource(RunSource):
    where = "this metadata store"

    def __init__(self, layout: LocalLayout):
        self.layout = layout
        self._store = None

    @property
    def store(self):
        """The run metadata store under layout.home; InspectError when there is none."""
        if self._store is None:
            path = self.layout.metadata_path
            if not path.is_file():
                raise InspectError(f"no metadata store at {path}; run `mlops run TASK` first or pass --home")
            self._store = metadata.open_store(str(path))
        return self._store

    def pipelines(self) -> Dict[str, str]:
        """task name -> pipeline name for every mlops pipeline in the store."""
        found = {}
        for context in self.store.get_contexts_by_type(lineage.PIPELINE_CONTEXT_TYPE):
            found[nodes.task_of(context.name) or context.name] = context.name
        return dict(sorted(found.items()))

    def tasks(self) -> List[str]:
        return list(self.pipelines())

    def _pipeline(self, task: str) -> str:
        return self.pipelines().get(task, nodes.pipeline_name(task))

    def run_ids(self, task: str) -> List[str]:
        run_ids = lineage.list_run_ids(self.store, self._pipeline(task))
        if not run_ids:
            raise InspectError(f"no runs of {task!r} in {self.layout.metadata_path}; run `mlops run {task}` first")
        return run_ids

    def load_run(self, task: str, run_id: str) -> Optional[lineage.RunRecord]:
        pipeline = self._pipeline(task)
        record = lineage.load_run(self.store, pipeline, run_id)
        if record is not None:
            mark_interrupted(record, self.live_run_id(task, pipeline))
        return record

    def live_run_id(self, task: str, pipeline: str) -> Optional[str]:
        """The run id of the task's run in progress (it holds the task lock), else None."""
        holder = lock_holder(self.layout, task)
        if holder is None:
            return None
        # A run that has just taken the lock may not have recorded its id yet: the newest one is live.
        return holder.get("run_id") or next(iter(lineage.list_run_ids(self.store, pipeline)), None)


def mark_interrupted(record: lineage.RunRecord, live_run_id: Optional[str]) -> List[str]:
    """Show interrupted executions as 'interrupted': those `mlops run` canceled on SIGTERM/SIGINT,
    and those of a run that is not live (`live_run_id`) but still 'running'/'new' in ML Metadata,
    which belong to a process that died (SIGKILL, a crash): TFX never closes them. Returns their
    node ids."""
    found = []
    for node in record.nodes.values():
        if node.state == "canceled" or (node.state in UNFINISHED and record.run_id != live_run_id):
            node.state = "interrupted"
            found.append(node.node_id)
    return found
