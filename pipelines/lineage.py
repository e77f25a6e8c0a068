"""Read pipeline runs back from the ML Metadata store: executions, artifacts and their properties."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.metadata import NODE_CONTEXT_TYPE, PIPELINE_CONTEXT_TYPE, RUN_CONTEXT_TYPE

STATE_NAMES = {
    v: k.lower() for k, v in metadata_store_pb2.Execution.State.items()
}


def property_value(artifact_or_execution, name):
    """A property or custom property of an ML Metadata artifact/execution as a Python value."""
    for props in (artifact_or_execution.custom_properties, artifact_or_execution.properties):
        if name in props:
            value = props[name]
            kind = value.WhichOneof("value")
            if kind == "struct_value":
                from google.protobuf import json_format

                return json_format.MessageToDict(value.struct_value)
            return getattr(value, kind) if kind else None
    return None


@dataclass
class ArtifactRecord:
    id: int
    type: str
    uri: str
    key: str
    properties: Dict[str, object] = field(default_factory=dict)

    def get(self, name, default=None):
        return self.properties.get(name, default)


@dataclass
class NodeExecution:
    node_id: str
    execution_id: int
    state: str  # complete | cached | failed | running | ...
    start_ms: int
    end_ms: int
    outputs: Dict[str, List[ArtifactRecord]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end_ms - self.start_ms) / 1000.0)

    def output(self, key: str) -> Optional[ArtifactRecord]:
        found = self.outputs.get(key) or []
        return found[0] if found else None


@dataclass
class RunRecord:
    pipeline: str
    run_id: str
    nodes: Dict[str, NodeExecution]

    @property
    def start_ms(self) -> int:
        return min((n.start_ms for n in self.nodes.values()), default=0)

    @property
    def end_ms(self) -> int:
        return max((n.end_ms for n in self.nodes.values()), default=0)


def _artifact_record(store, artifact, key) -> ArtifactRecord:
    type_name = store.get_artifact_types_by_id([artifact.type_id])[0].name
    props = {}
    for mapping in (artifact.properties, artifact.custom_properties):
        for name in mapping:
            props[name] = property_value(artifact, name)
    return ArtifactRecord(artifact.id, type_name, artifact.uri, key, props)


def _node_id(store, execution_id: int, pipeline: str) -> str:
    for context in store.get_contexts_by_execution(execution_id):
        if context.type == NODE_CONTEXT_TYPE or context.name.startswith(pipeline + "."):
            if context.name.startswith(pipeline + "."):
                return context.name[len(pipeline) + 1:]
    return f"execution-{execution_id}"


def load_run(store: metadata_store.MetadataStore, pipeline: str, run_id: str) -> Optional[RunRecord]:
    """All executions of one run with their output artifacts, keyed by node id."""
    context = store.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run_id)
    if context is None:
        return None
    executions = store.get_executions_by_context(context.id)
    events = store.get_events_by_execution_ids([e.id for e in executions])
    artifact_ids = sorted({ev.artifact_id for ev in events})
    artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)}
    nodes: Dict[str, NodeExecution] = {}
    for execution in executions:
        node = NodeExecution(
            node_id=_node_id(store, execution.id, pipeline),
            execution_id=execution.id,
            state=STATE_NAMES.get(execution.last_known_state, "unknown"),
            start_ms=execution.create_time_since_epoch,
            end_ms=execution.last_update_time_since_epoch,
        )
        for ev in events:
            if ev.execution_id != execution.id or ev.type not in (
                metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT
            ):
                continue
            key = ev.path.steps[0].key if ev.path.steps else ""
            record = _artifact_record(store, artifacts[ev.artifact_id], key)
            node.outputs.setdefault(key, []).append(record)
        nodes[node.node_id] = node
    return RunRecord(pipeline=pipeline, run_id=run_id, nodes=nodes)


def list_run_ids(store: metadata_store.MetadataStore, pipeline: str) -> List[str]:
    """Run ids of a pipeline, newest first."""
    pipeline_ctx = store.get_context_by_type_and_name(PIPELINE_CONTEXT_TYPE, pipeline)
    if pipeline_ctx is None:
        return []
    execution_ids = {e.id for e in store.get_executions_by_context(pipeline_ctx.id)}
    runs = [
        c for c in store.get_contexts_by_type(RUN_CONTEXT_TYPE)
        if any(e.id in execution_ids for e in store.get_executions_by_context(c.id))
    ]
    runs.sort(key=lambda c: c.create_time_since_epoch, reverse=True)
    return [c.name for c in runs]
