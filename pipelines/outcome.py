"""What a run amounts to, worked out in one place from what it recorded in ML Metadata: component
states, blessed (and why not), pushed, registered, the data version and notes, and the overall
metrics. The local runner returns it; `mlops run`'s summary, `mlops runs`, the report, the
benchmarks and the tests read it."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from pipelines import nodes
from pipelines.lineage import RunRecord

# Exit statuses of `mlops run` (README "Exit status").
EXIT_BLESSED = 0
EXIT_FAILED = 1
EXIT_NOT_BLESSED = 3


@dataclass
class RunOutcome:
    task: str
    run_id: str
    # (node_id, state, seconds) in pipeline order; states: complete | cached | failed | running |
    # new | canceled | interrupted
    components: List[Tuple[str, str, float]] = field(default_factory=list)
    start: Optional[datetime.datetime] = None
    seconds: float = 0.0
    blessed: Optional[bool] = None
    reasons: List[str] = field(default_factory=list)
    # The InfraValidator's verdict (None: it did not run); why not ("<check>: ..."); the serving
    # latencies it measured, {"batch_1_p50": ms, "batch_1_p99": ms, "batch_64_p50": ms, ...}.
    infra_blessed: Optional[bool] = None
    infra_reason: Optional[str] = None
    infra_latency_ms: Dict[str, float] = field(default_factory=dict)
    pushed: Optional[bool] = None
    pushed_path: Optional[str] = None
    # Model registry: True/False once the Registrar ran; "census v3" or why not; unchanged: the model
    # was already pushed and registered (a rerun), so nothing new was.
    registered: Optional[bool] = None
    unchanged: bool = False
    registered_as: Optional[str] = None
    registry_reason: Optional[str] = None
    metrics: Dict[str, float] = field(default_factory=dict)
    # The registered version the candidate was compared against ("census v3 (census@production)"),
    # "none: ..." when there was none, None when the run has no Baseline step.
    baseline: Optional[str] = None
    data_md5: Optional[str] = None
    data_dirty: Optional[bool] = None
    # What ExampleGen dropped or repaired in the input (skipped records, replaced bytes).
    data_notes: List[str] = field(default_factory=list)
    # Set by the runner for the run it ran: the error that stopped it, or the signal.
    error: Optional[str] = None
    interrupted_by: Optional[str] = None
    log_file: Optional[str] = None
    # sha256 of the effective TaskConfig (pipelines.run_identity), set by the runner for its run.
    config_hash: Optional[str] = None
    report_path: Optional[str] = None
    # Problems that did not change the outcome (e.g. the report could not be written).
    warnings: List[str] = field(default_factory=list)

    @property
    def states(self) -> Dict[str, str]:
        return {node: state for node, state, _ in self.components}

    @property
    def failed(self) -> List[str]:
        return [node for node, state, _ in self.components if state == "failed"]

    @property
    def interrupted(self) -> List[str]:
        return [node for node, state, _ in self.components if state == "interrupted"]

    @property
    def registration(self) -> Optional[str]:
        """'census v3', 'no: reason', or None when the run has no Registrar output."""
        if self.registered is None:
            return None
        if self.registered:
            return (self.registered_as or "yes") + (" (unchanged)" if self.unchanged else "")
        return f"no: {self.registry_reason}" if self.registry_reason else "no"

    @property
    def exit_status(self) -> int:
        """0 blessed (or nothing to bless was asked), 3 evaluated and not blessed, 1 failed,
        128 + signal when interrupted."""
        if self.interrupted_by:
            import signal

            return 128 + int(signal.Signals[self.interrupted_by])
        if self.error or self.failed:
            return EXIT_FAILED
        if self.blessed is False:
            return EXIT_NOT_BLESSED
        return EXIT_BLESSED


def outcome_of(run: RunRecord, task: Optional[str] = None, with_metrics: bool = True) -> RunOutcome:
    """The outcome recorded for a run. with_metrics reads the overall metrics and the threshold
    failures from the Evaluator's output (TFMA); without it only ML Metadata is read."""
    order = {node: i for i, node in enumerate(nodes.NODE_ORDER)}
    ordered = sorted(run.nodes.values(), key=lambda n: (order.get(n.node_id, 99), n.start_ms))
    outcome = RunOutcome(
        task=task or nodes.task_of(run.pipeline) or run.pipeline,
        run_id=run.run_id,
        components=[(n.node_id, n.state, n.seconds) for n in ordered],
        start=datetime.datetime.fromtimestamp(run.start_ms / 1000) if run.start_ms else None,
        seconds=max(0.0, (run.end_ms - run.start_ms) / 1000.0),
    )

    example_gen = run.nodes.get(nodes.EXAMPLE_GEN)
    examples = example_gen.output("examples") if example_gen else None
    if examples:
        outcome.data_md5 = examples.get("dvc_data_md5")
        dirty = examples.get("dvc_data_dirty")
        outcome.data_dirty = None if dirty is None else bool(dirty)
        outcome.data_notes = data_notes(examples)

    baseline = run.nodes.get(nodes.BASELINE)
    baseline_model = baseline.output("model") if baseline else None
    if baseline_model is not None:
        outcome.baseline = baseline_model.get("baseline")

    evaluator = run.nodes.get(nodes.EVALUATOR)
    blessing = evaluator.output("blessing") if evaluator else None
    if blessing is not None:
        outcome.blessed = bool(blessing.get("blessed"))
        evaluation_artifact = evaluator.output("evaluation")
        if with_metrics and evaluation_artifact:
            from components import evaluation

            outcome.metrics = evaluation.overall_metrics(evaluation_artifact.uri)
            if not outcome.blessed:
                _, outcome.reasons = evaluation.validation_failures(evaluation_artifact.uri)
    else:
        stopped = [n for n in ordered if n.state in ("failed", "interrupted", "canceled")]
        if stopped:
            how = "stopped" if stopped[0].state == "failed" else "was interrupted"
            outcome.reasons = [f"the run {how} at {stopped[0].node_id}"]
        else:
            outcome.reasons = ["the Evaluator did not run"]

    infra_validator = run.nodes.get(nodes.INFRA_VALIDATOR)
    infra = infra_validator.output("blessing") if infra_validator else None
    if infra is not None:
        outcome.infra_blessed = bool(infra.get("blessed"))
        outcome.infra_reason = infra.get("reason") or None
        outcome.infra_latency_ms = infra_latencies(infra)

    pusher = run.nodes.get(nodes.PUSHER)
    pushed = pusher.output("pushed_model") if pusher else None
    if pushed is not None:
        outcome.pushed = bool(pushed.get("pushed"))
        outcome.pushed_path = pushed.get("pushed_destination") if outcome.pushed else None

    registrar = run.nodes.get(nodes.REGISTRAR)
    registered = registrar.output("registered_model") if registrar else None
    if registrar is not None and registrar.state in ("failed", "canceled", "interrupted"):
        outcome.registered = False
        outcome.registry_reason = f"the Registrar {'failed' if registrar.state == 'failed' else 'was interrupted'}"
        if outcome.pushed:
            outcome.warnings.append(
                f"{outcome.pushed_path} was pushed but is not registered, so no alias serves it; the next "
                f"`mlops run {outcome.task}` registers it (the model is unchanged)"
            )
    elif registered is not None:
        outcome.registered = bool(registered.get("registered"))
        outcome.unchanged = bool(registered.get("unchanged"))
        if outcome.registered:
            name, version = registered.get("model_name"), registered.get("model_version")
            outcome.registered_as = f"{name} v{version}" if version not in (None, "") else str(name or "yes")
        else:
            outcome.registry_reason = registered.get("reason") or "unknown"
    return outcome


def infra_latencies(blessing) -> Dict[str, float]:
    """{'batch_1_p50': ms, ...} from the InfraBlessing's `latency_batch_<n>_<p50|p99>_ms` properties
    (components.infra_validator), in batch order."""
    found = {}
    for name, value in blessing.properties.items():
        if name.startswith("latency_batch_") and name.endswith("_ms") and value is not None:
            found[name[len("latency_"):-len("_ms")]] = float(value)
    return dict(sorted(found.items(), key=lambda kv: (int(kv[0].split("_")[1]), kv[0])))


def infra_summary(outcome: RunOutcome) -> Optional[str]:
    """'p50 1.2 ms / p99 3.4 ms at batch 1, p50 … at batch 64', or why not; None when not run."""
    if outcome.infra_blessed is None:
        return None
    if not outcome.infra_blessed:
        return outcome.infra_reason or "not infra-validated"
    latency = outcome.infra_latency_ms
    batches = sorted({int(key.split("_")[1]) for key in latency})
    return ", ".join(f"p50 {_ms(latency.get(f'batch_{b}_p50'))} ms / p99 {_ms(latency.get(f'batch_{b}_p99'))} ms "
                     f"at batch {b}" for b in batches) or "no latency recorded"


def _ms(value: Optional[float]) -> str:
    if value is None:
        return "?"
    return f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def data_notes(examples) -> List[str]:
    """Input records ExampleGen skipped or repaired, from its Examples artifact's properties
    (`skipped_count`/`skipped_files`: undecodable images; `mixed_type_columns`: CSV columns read as
    strings because of a few non-numeric values; `invalid_utf8_rows`: CSV rows whose invalid UTF-8
    bytes became U+FFFD)."""
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
    duplicates, rows = examples.get("duplicate_rows"), examples.get("row_count")
    if duplicates:
        share = f" ({100.0 * duplicates / rows:.1f} % of {rows} rows)" if rows else ""
        notes.append(f"{duplicates} duplicated row(s){share}: copies of an earlier row, kept")
    empty = examples.get("empty_values")
    if empty:
        import json

        counts = json.loads(empty)
        if counts:
            notes.append("empty values (missing): " + ", ".join(f"{column} {n}" for column, n in counts.items()))
    return notes
