"""What every section builder gets (the run, RunInputs) and fills (its Section), and how one is run
so that a builder that fails costs only its own section."""
from __future__ import annotations

import glob
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from models.common.contract import SPLITS
from pipelines import lineage, nodes, slices
from pipelines.report.formatting import describe


@dataclass
class Section:
    id: str
    title: str
    template: str  # under templates/, e.g. sections/tuner.html.j2
    data: Dict[str, Any] = field(default_factory=dict)
    message: Optional[str] = None  # shown instead of (or above) the data, e.g. "no tuner"
    error: Optional[str] = None  # the section could not be read (or shown)


@dataclass(frozen=True)
class SectionSpec:
    """One entry of the report: `build(section, run)` reads artifacts into section.data/message;
    templates/sections/<id>.html.j2 shows them."""

    id: str
    title: str
    build: Callable[["Section", "RunInputs"], None]

    @property
    def template(self) -> str:
        return f"sections/{self.id}.html.j2"


class RunInputs:
    """The run a report describes, and what its sections share: node outputs, states and the
    Evaluator's slice table (read once, for the slices and blessing sections and the header)."""

    def __init__(self, record: lineage.RunRecord, task: str, task_config=None, metadata_path: Optional[str] = None):
        self.record = record
        self.task = task
        self.task_config = task_config
        self.metadata_path = metadata_path
        self._table: Any = None
        self._table_error: Optional[BaseException] = None
        self._table_read = False

    def output(self, node: str, key: str) -> Optional[lineage.ArtifactRecord]:
        execution = self.record.nodes.get(node)
        return execution.output(key) if execution else None

    def state(self, node: str) -> str:
        execution = self.record.nodes.get(node)
        return execution.state if execution else "absent"

    @property
    def failed(self) -> List[str]:
        return [n.node_id for n in self.record.nodes.values() if n.state == "failed"]

    def missing(self, node: str) -> str:
        """Why `node` has no output in this run."""
        if node in self.record.nodes:
            return f"{node} has no output in this run ({self.record.nodes[node].state})."
        if self.failed:
            return f"{node} did not run: the run stopped at {self.failed[0]}."
        return f"{node} did not run in this run."

    @property
    def preferred_metric(self) -> Optional[str]:
        """The task's threshold metric, used when the evaluation itself names none."""
        return getattr(getattr(self.task_config, "eval", None), "threshold_metric", None)

    def slice_table(self) -> Optional[slices.SliceTable]:
        """The Evaluator's metrics per slice; None when the run has no evaluation. An unreadable
        evaluation raises (every time it is asked for, it is read once)."""
        if not self._table_read:
            self._table_read = True
            evaluation = self.output(nodes.EVALUATOR, "evaluation")
            if evaluation is not None:
                try:
                    self._table = slices.load_slice_table(evaluation.uri)
                except Exception as exc:
                    self._table_error = exc
        if self._table_error is not None:
            raise self._table_error
        return self._table


def splits(uri: str) -> List[str]:
    """Split names under an artifact directory (Split-train, Split-validation, ...) in pipeline
    order (train, validation, test), others after them by name."""
    return sorted(
        (os.path.basename(p)[len("Split-"):] for p in glob.glob(os.path.join(uri, "Split-*"))),
        key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s),
    )


def run_section(spec: SectionSpec, run: RunInputs) -> Section:
    section = Section(spec.id, spec.title, spec.template)
    try:
        spec.build(section, run)
    except Exception as exc:  # one unreadable artifact must not cost the rest of the report
        section.error = describe(exc)
        section.data["traceback"] = traceback.format_exc(limit=3)
    return section
