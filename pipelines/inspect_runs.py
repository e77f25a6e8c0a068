"""Pipeline runs read back from the ML Metadata store for `mlops runs`, `slices` and `report`:
which runs exist, which one a user means, and which of them was cut short."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

from components import metadata
from pipelines import lineage, nodes
from pipelines.local_runner import LocalLayout
from pipelines.outcome import RunOutcome, outcome_of

STATE_SYMBOLS = {
    "complete": "✓", "cached": "↺", "failed": "✗", "running": "…", "new": "…", "interrupted": "✗", "canceled": "✗",
}
ABSENT = "—"
LEGEND = "✓ ran · ↺ cached · ✗ failed or interrupted · … running · — did not run"
# ML Metadata states of an execution that has not ended.
UNFINISHED = ("running", "new")


class InspectError(Exception):
    """Nothing to inspect (no store, no such run); the message says what to do."""


def open_store(layout: LocalLayout):
    """The run metadata store under layout.home; InspectError when there is none (never creates one)."""
    path = layout.metadata_path
    if not path.is_file():
        raise InspectError(f"no metadata store at {path}; run `mlops run TASK` first or pass --home")
    return metadata.open_store(str(path))


def pipeline_tasks(store) -> Dict[str, str]:
    """task name -> pipeline name for every mlops pipeline in the store."""
    found = {}
    for context in store.get_contexts_by_type(lineage.PIPELINE_CONTEXT_TYPE):
        found[nodes.task_of(context.name) or context.name] = context.name
    return dict(sorted(found.items()))


def resolve_run(store, task: str, run: Optional[str] = "latest", need: Optional[str] = None) -> lineage.RunRecord:
    """The run named `run` of `task` ('latest', a run id, or an unambiguous prefix of one).

    With `need` (a node id), 'latest' means the newest run in which that node has outputs, e.g. the
    newest run that got as far as the Evaluator.
    """
    pipeline = nodes.pipeline_name(task)
    run_ids = lineage.list_run_ids(store, pipeline)
    if not run_ids:
        raise InspectError(f"no runs of {task!r} in this metadata store; run `mlops run {task}` first")
    if not run or run == "latest":
        for run_id in run_ids:
            record = lineage.load_run(store, pipeline, run_id)
            if need is None or (record and need in record.nodes and record.nodes[need].outputs):
                return record
        raise InspectError(f"no run of {task!r} has {need} outputs yet (newest run: {run_ids[0]})")
    matches = [r for r in run_ids if r == run] or [r for r in run_ids if r.startswith(run)]
    if not matches:
        raise InspectError(f"no run {run!r} of {task!r}; `mlops runs {task}` lists them")
    if len(matches) > 1:
        raise InspectError(f"run {run!r} is ambiguous: {', '.join(matches[:5])}")
    return lineage.load_run(store, pipeline, matches[0])


def symbols(outcome: RunOutcome, columns: List[str]) -> str:
    """One state symbol per column (node id), ABSENT where the run has no such node."""
    states = outcome.states
    return "".join(STATE_SYMBOLS.get(states[n], "?") if n in states else ABSENT for n in columns)


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


def live_run_id(layout: LocalLayout, task: str, run_ids: List[str]) -> Optional[str]:
    """The run id of the task's run in progress (it holds the task lock), else None."""
    from pipelines.local_runner import lock_holder

    holder = lock_holder(layout, task)
    if holder is None:
        return None
    # A run that has just taken the lock may not have recorded its id yet: the newest one is live.
    return holder.get("run_id") or (run_ids[0] if run_ids else None)


def list_runs(layout: LocalLayout, task: Optional[str] = None,
              limit: int = 0) -> Tuple[Dict[str, List[RunOutcome]], Dict[str, int]]:
    """({task: its runs, newest first, at most `limit` when limit > 0}, {task: number of runs})."""
    store = open_store(layout)
    pipelines = pipeline_tasks(store)
    if task is not None:
        if task not in pipelines:
            raise InspectError(f"no runs of {task!r} in {layout.metadata_path}; run `mlops run {task}` first")
        pipelines = {task: pipelines[task]}
    result: Dict[str, List[RunOutcome]] = {}
    totals: Dict[str, int] = {}
    for name, pipeline in pipelines.items():
        run_ids = lineage.list_run_ids(store, pipeline)
        totals[name] = len(run_ids)
        live = live_run_id(layout, name, run_ids)
        if limit > 0:
            run_ids = run_ids[:limit]
        rows = []
        for run_id in run_ids:
            record = lineage.load_run(store, pipeline, run_id)
            if record is not None:
                mark_interrupted(record, live)
                rows.append(outcome_of(record, name, with_metrics=False))
        result[name] = rows
    return result, totals


def columns_for(rows: List[RunOutcome]) -> List[str]:
    """Node ids seen in these runs: the pipeline's order first, then any others by name."""
    seen = {node for row in rows for node in row.states}
    order = [n for n in nodes.NODE_ORDER if n in seen]
    return order + sorted(seen - set(order))


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def report_dir(home: Path, task: str, run_id: str) -> Path:
    """<home>/reports/<task>/<run id with ':' replaced by '-'>/"""
    return Path(home) / "reports" / task / run_id.replace(":", "-")
