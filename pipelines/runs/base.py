"""The run-source interface: `mlops runs`, `slices` and `report` read every run through a
RunSource, whether it ran here (the local ML Metadata store) or on Kubeflow (the KFP API and the
object store), so nothing that reads a run back knows where it came from."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from pipelines import nodes
from pipelines.lineage import RunRecord
from pipelines.outcome import RunOutcome, outcome_of

STATE_SYMBOLS = {
    "complete": "✓", "cached": "↺", "failed": "✗", "running": "…", "new": "…", "interrupted": "✗", "canceled": "✗",
}
ABSENT = "—"
LEGEND = "✓ ran · ↺ cached · ✗ failed or interrupted · … running · — did not run"
# The artifacts `mlops slices` and the report open (the report sections' run.output calls), as
# (node id, output key); the rest of a run (examples, models) is read for its properties only.
READ_BACK = frozenset({
    (nodes.STATISTICS_GEN, "statistics"), (nodes.SCHEMA_GEN, "schema"), (nodes.EXAMPLE_VALIDATOR, "anomalies"),
    (nodes.BASELINE, "statistics"), (nodes.TUNER, "best_hyperparameters"), (nodes.TUNER, "tuner_results"),
    (nodes.TRAINER, "model_run"), (nodes.EVALUATOR, "evaluation"), (nodes.EVALUATOR, "blessing"),
    (nodes.INFRA_VALIDATOR, "blessing"),
})
# ML Metadata states of an execution that has not ended.
UNFINISHED = ("running", "new")


class InspectError(Exception):
    """Nothing to inspect (no store, no such run); the message says what to do."""


class RunSource:
    """The runs of one place, newest first. A source gives tasks(), run_ids() and load_run(); the
    rest (listing with outcomes, picking the run a user means) is the same for every source."""

    #: how messages name the place, e.g. "this metadata store"
    where = "this source"

    def tasks(self) -> List[str]:
        """Tasks with runs here, by name."""
        raise NotImplementedError

    def run_ids(self, task: str) -> List[str]:
        """The task's run ids, newest first; InspectError when the task has none."""
        raise NotImplementedError

    def load_run(self, task: str, run_id: str) -> Optional[RunRecord]:
        """One run with every node's state and output artifacts (URIs this process can read)."""
        raise NotImplementedError

    def no_runs(self, task: str) -> InspectError:
        return InspectError(f"no runs of {task!r} in {self.where}; run `mlops run {task}` first")

    def close(self) -> None:
        """Release what reading took (connections, downloaded artifacts)."""

    def __enter__(self) -> "RunSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def list_runs(self, task: Optional[str] = None,
                  limit: int = 0) -> Tuple[Dict[str, List[RunOutcome]], Dict[str, int]]:
        """({task: its runs, newest first, at most `limit` when limit > 0}, {task: number of runs})."""
        result: Dict[str, List[RunOutcome]] = {}
        totals: Dict[str, int] = {}
        for name in ([task] if task is not None else self.tasks()):
            run_ids = self.run_ids(name)
            totals[name] = len(run_ids)
            rows = []
            for run_id in run_ids[:limit] if limit > 0 else run_ids:
                record = self.load_run(name, run_id)
                if record is not None:
                    rows.append(outcome_of(record, name, with_metrics=False))
            result[name] = rows
        return result, totals

    def resolve_run(self, task: str, run: Optional[str] = "latest", need: Optional[str] = None) -> RunRecord:
        """The run named `run` of `task` ('latest', a run id, or an unambiguous prefix of one).

        With `need` (a node id), 'latest' means the newest run in which that node has outputs, e.g.
        the newest run that got as far as the Evaluator.
        """
        run_ids = self.run_ids(task)
        if not run or run == "latest":
            for run_id in run_ids:
                record = self.load_run(task, run_id)
                if record and (need is None or (need in record.nodes and record.nodes[need].outputs)):
                    return record
            raise InspectError(f"no run of {task!r} has {need} outputs yet (newest run: {run_ids[0]})")
        matches = [r for r in run_ids if r == run] or [r for r in run_ids if r.startswith(run)]
        if not matches:
            raise InspectError(f"no run {run!r} of {task!r}; `mlops runs {task}` lists them")
        if len(matches) > 1:
            raise InspectError(f"run {run!r} is ambiguous: {', '.join(matches[:5])}")
        record = self.load_run(task, matches[0])
        if record is None:
            raise InspectError(f"run {matches[0]!r} of {task!r} recorded nothing yet")
        return record


def symbols(outcome: RunOutcome, columns: List[str]) -> str:
    """One state symbol per column (node id), ABSENT where the run has no such node."""
    states = outcome.states
    return "".join(STATE_SYMBOLS.get(states[n], "?") if n in states else ABSENT for n in columns)


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
