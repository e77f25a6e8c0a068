"""A self-contained HTML report of one pipeline run: data, validation, tuning, training, slices and
the blessing decision. Everything is read back from the run's artifacts through a run source
(pipelines.runs: a local run or a Kubeflow one), so it works for every task and wherever the run
ran; images are inline PNGs and the page loads nothing from anywhere.

Written to <home>/reports/<task>/<run id with ':' replaced by '-'>/report.html after each
`mlops run`; `mlops report TASK [--run RUN]` regenerates it.

Layout: context.py gathers what the page shows (the header, and one section per entry of
sections.SECTIONS, each read by its own module under sections/); charts.py draws the figures as
inline PNGs; rendering.py fills the Jinja2 templates under templates/.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from pipelines.layout import LocalLayout
from pipelines.report.charts import training_figure
from pipelines.report.context import build_context
from pipelines.report.rendering import render
from pipelines.report.sections.training import read_scalars
from pipelines.runs.base import RunSource

REPORT_FILE = "report.html"


def report_path(home: Union[str, Path], task: str, run_id: str) -> Path:
    return LocalLayout(Path(home)).report_dir(task, run_id) / REPORT_FILE


def write_report(source: RunSource, task: str, run_id: Optional[str] = None, *, home: Union[str, Path],
                 task_config=None) -> Path:
    """Write report.html for one run of `task` from `source` (default: the newest) under `home`'s
    reports/ and return its path. The run may have run anywhere; the report is always local."""
    record = source.resolve_run(task, run_id or "latest")
    if task_config is None:
        try:
            from pipelines.tasks import load_task

            task_config = load_task(task)
        except Exception:
            task_config = None  # a task no longer registered still gets a report
    html_text = render(build_context(record, task, task_config))
    path = report_path(home, task, record.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html_text, encoding="utf-8")
    os.replace(tmp, path)
    return path


__all__ = ["REPORT_FILE", "build_context", "read_scalars", "render", "report_path", "training_figure",
           "write_report"]
