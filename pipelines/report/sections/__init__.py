"""The report's sections, in page order.

A section is a builder `build(section, run)` that reads the run's artifacts (through RunInputs)
into section.data / section.message, and a template templates/sections/<id>.html.j2 that shows
them (it gets the page's context plus `s`, the Section). A builder that raises only costs its own
section: the page shows the error there and every other section as usual.

To add a section (e.g. infra validation): write `build` in a new module here, add
templates/sections/<id>.html.j2, and add one SectionSpec line to SECTIONS.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from pipelines.report.sections import anomalies, blessing, evaluation, infra, statistics, training, tuner
from pipelines.report.sections.base import RunInputs, Section, SectionSpec, run_section

SECTIONS: List[SectionSpec] = [
    SectionSpec("statistics", "Dataset statistics", statistics.build),
    SectionSpec("anomalies", "Data validation (anomalies)", anomalies.build),
    SectionSpec("tuner", "Hyperparameter tuning", tuner.build),
    SectionSpec("training", "Training curves", training.build),
    SectionSpec("slices", "Evaluation per slice", evaluation.build),
    SectionSpec("blessing", "Blessing decision", blessing.build),
    SectionSpec("infra", "Infra validation", infra.build),
]


def build_sections(run: RunInputs, specs: Optional[Sequence[SectionSpec]] = None) -> List[Section]:
    """Every section of the page (default: SECTIONS), each built on its own."""
    return [run_section(spec, run) for spec in (SECTIONS if specs is None else specs)]


__all__ = ["SECTIONS", "RunInputs", "Section", "SectionSpec", "build_sections", "run_section"]
