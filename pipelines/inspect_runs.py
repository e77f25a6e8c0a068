"""Pipeline runs as rows of a table, read from the ML Metadata store: what ran, what came from
cache, what failed, and whether the model was blessed, pushed and registered."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from pipelines import lineage
from pipelines.local_runner import LocalLayout

PIPELINE_PREFIX = "mlops-"

# The factory's node ids (pipelines/factory.py), mirrored so that listing runs does not import TFX;
# tests/test_inspect.py checks they match. Runs without a node (e.g. no Registrar yet) still read.
EVALUATOR, PUSHER, REGISTRAR = "Evaluator", "Pusher", "Registrar"
NODE_ORDER = [
    "ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Tuner", "Trainer",
    "latest_blessed_model_resolver", EVALUATOR, PUSHER, REGISTRAR,
]

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
    from ml_metadata import metadata_store

    path = layout.metadata_path
    if not path.is_file():
        raise InspectError(f"no metadata store at {path}; run `mlops run TASK` first or pass --home")
    return metadata_store.MetadataStore(lineage.sqlite_config(str(path)))


def pipeline_tasks(store) -> Dict[str, str]:
    """task name -> pipeline name for every mlops pipeline in the store."""
    found = {}
    for context in store.get_contexts_by_type(lineage.PIPELINE_CONTEXT_TYPE):
        name = context.name
        task = name[len(PIPELINE_PREFIX):] if name.startswith(PIPELINE_PREFIX) else name
        found[task] = name
    return dict(sorted(found.items()))


def pipeline_for(task: str) -> str:
    return PIPELINE_PREFIX + task


def resolve_run(store, task: str, run: Optional[str] = "latest", need: Optional[str] = None) -> lineage.RunRecord:
    """The run named `run` of `task` ('latest', a run id, or an unambiguous prefix of one).

    With `need` (a node id), 'latest' means the newest run in which that node has outputs, e.g. the
    newest run that got as far as the Evaluator.
    """
    pipeline = pipeline_for(task)
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


@dataclass
class RunRow:
    task: str
    run_id: str
    start: Optional[datetime.datetime]
    seconds: float
    states: Dict[str, str]  # node id -> complete | cached | failed | ...
    blessed: Optional[bool] = None
    pushed: Optional[bool] = None
    pushed_path: Optional[str] = None
    registered: Optional[str] = None  # "name v3", "no (reason)" or None when there is no Registrar
    extra: Dict[str, object] = field(default_factory=dict)

    def symbols(self, nodes: List[str]) -> str:
        return "".join(STATE_SYMBOLS.get(self.states[n], "?") if n in self.states else ABSENT for n in nodes)

    @property
    def failed(self) -> List[str]:
        return [node for node, state in self.states.items() if state == "failed"]

    @property
    def interrupted(self) -> List[str]:
        return [node for node, state in self.states.items() if state == "interrupted"]


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


def run_row(task: str, record: lineage.RunRecord) -> RunRow:
    start = datetime.datetime.fromtimestamp(record.start_ms / 1000) if record.start_ms else None
    row = RunRow(
        task=task,
        run_id=record.run_id,
        start=start,
        seconds=max(0.0, (record.end_ms - record.start_ms) / 1000.0),
        states={node_id: node.state for node_id, node in record.nodes.items()},
    )
    evaluator = record.nodes.get(EVALUATOR)
    blessing = evaluator.output("blessing") if evaluator else None
    if blessing is not None:
        row.blessed = bool(blessing.get("blessed"))
    pusher = record.nodes.get(PUSHER)
    pushed = pusher.output("pushed_model") if pusher else None
    if pushed is not None:
        row.pushed = bool(pushed.get("pushed"))
        row.pushed_path = pushed.get("pushed_destination") if row.pushed else None
    row.registered = registration(record)
    return row


def registration(record: lineage.RunRecord) -> Optional[str]:
    """'name v3' when the Registrar registered a version, 'no: reason' when it declined, None when
    the run has no Registrar output."""
    registrar = record.nodes.get(REGISTRAR)
    registered = registrar.output("registered_model") if registrar else None
    if registered is None:
        return None
    if registered.get("registered"):
        name, version = registered.get("model_name"), registered.get("model_version")
        return f"{name} v{version}" if version not in (None, "") else str(name or "yes")
    reason = registered.get("reason")
    return f"no: {reason}" if reason else "no"


def list_runs(layout: LocalLayout, task: Optional[str] = None,
              limit: int = 0) -> Tuple[Dict[str, List[RunRow]], Dict[str, int]]:
    """({task: its runs, newest first, at most `limit` when limit > 0}, {task: number of runs})."""
    store = open_store(layout)
    pipelines = pipeline_tasks(store)
    if task is not None:
        if task not in pipelines:
            raise InspectError(f"no runs of {task!r} in {layout.metadata_path}; run `mlops run {task}` first")
        pipelines = {task: pipelines[task]}
    result: Dict[str, List[RunRow]] = {}
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
                rows.append(run_row(name, record))
        result[name] = rows
    return result, totals


def columns_for(rows: List[RunRow]) -> List[str]:
    """Node ids seen in these runs: the factory's order first, then any others by name."""
    seen = {node for row in rows for node in row.states}
    order = [n for n in NODE_ORDER if n in seen]
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
