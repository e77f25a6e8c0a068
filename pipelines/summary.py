"""What a finished run amounts to: components, blessing (and why), pushed path, headline metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from pipelines import evaluation, factory
from pipelines.lineage import RunRecord


@dataclass
class RunSummary:
    run_id: str
    components: List[tuple]  # (node_id, state, seconds)
    blessed: Optional[bool]
    reasons: List[str] = field(default_factory=list)
    pushed_path: Optional[str] = None
    metrics: Dict[str, float] = field(default_factory=dict)
    data_md5: Optional[str] = None
    data_dirty: Optional[bool] = None
    # Model registry: True/False once the Registrar ran; "census v3" or why not.
    registered: Optional[bool] = None
    registered_as: Optional[str] = None
    registry_reason: Optional[str] = None
    # What ExampleGen dropped or repaired in the input (skipped records, replaced bytes).
    data_notes: List[str] = field(default_factory=list)


def summarize(run: RunRecord) -> RunSummary:
    order = {node: i for i, node in enumerate(_NODE_ORDER)}
    nodes = sorted(run.nodes.values(), key=lambda n: (order.get(n.node_id, 99), n.start_ms))
    summary = RunSummary(run.run_id, [(n.node_id, n.state, n.seconds) for n in nodes], blessed=None)

    example_gen = run.nodes.get(factory.EXAMPLE_GEN)
    examples = example_gen.output("examples") if example_gen else None
    if examples:
        summary.data_md5 = examples.get("dvc_data_md5")
        dirty = examples.get("dvc_data_dirty")
        summary.data_dirty = None if dirty is None else bool(dirty)
        summary.data_notes = data_notes(examples)

    evaluator = run.nodes.get(factory.EVALUATOR)
    if evaluator and evaluator.state in ("complete", "cached"):
        blessing = evaluator.output("blessing")
        evaluation_artifact = evaluator.output("evaluation")
        summary.blessed = bool(blessing and blessing.get("blessed"))
        if evaluation_artifact:
            summary.metrics = evaluation.overall_metrics(evaluation_artifact.uri)
            if not summary.blessed:
                _, summary.reasons = evaluation.validation_failures(evaluation_artifact.uri)
    else:
        failed = [n for n in nodes if n.state in ("failed", "interrupted", "canceled")]
        if failed:
            how = "stopped" if failed[0].state == "failed" else "was interrupted"
            summary.reasons = [f"the run {how} at {failed[0].node_id}"]
        else:
            summary.reasons = ["the Evaluator did not run"]

    pusher = run.nodes.get(factory.PUSHER)
    pushed = pusher.output("pushed_model") if pusher else None
    if pushed and pushed.get("pushed"):
        summary.pushed_path = pushed.get("pushed_destination")

    registrar = run.nodes.get(factory.REGISTRAR)
    registered = registrar.output("registered_model") if registrar else None
    if registered is not None:
        summary.registered = bool(registered.get("registered"))
        if summary.registered:
            summary.registered_as = f"{registered.get('model_name')} v{registered.get('model_version')}"
        else:
            summary.registry_reason = registered.get("reason") or "unknown"
    return summary


def data_notes(examples) -> List[str]:
    """Input records ExampleGen skipped or repaired, from its Examples artifact's properties
    (`skipped_count`/`skipped_files`: pets' undecodable images; `mixed_type_columns`: CSV columns
    read as strings because of a few non-numeric values; `invalid_utf8_rows`: CSV rows whose
    invalid UTF-8 bytes became U+FFFD)."""
    notes = []
    skipped = examples.get("skipped_count")
    if skipped:
        files = examples.get("skipped_files")
        notes.append(f"{skipped} input record(s) skipped (not used for training)" + (f": {files}" if files else ""))
    mixed = examples.get("mixed_type_columns")
    if mixed:
        notes.append(f"numeric column(s) with non-numeric values, read as strings: {mixed}")
    repaired = examples.get("invalid_utf8_rows")
    if repaired:
        where = examples.get("invalid_utf8_where")
        notes.append(f"{repaired} row(s) had invalid UTF-8, replaced by U+FFFD" + (f" ({where})" if where else ""))
    return notes


_NODE_ORDER = [
    factory.EXAMPLE_GEN, factory.STATISTICS_GEN, factory.SCHEMA_GEN, factory.EXAMPLE_VALIDATOR,
    factory.TRANSFORM, factory.TUNER, factory.TRAINER, factory.RESOLVER, factory.EVALUATOR,
    factory.PUSHER, factory.REGISTRAR,
]
