"""ML Metadata access, one way for every layer: connection configs, opening a store, and the
lineage queries components need (who produced an artifact)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

RUN_CONTEXT_TYPE = "pipeline_run"
NODE_CONTEXT_TYPE = "node"
PIPELINE_CONTEXT_TYPE = "pipeline"


def sqlite_config(path: str, readonly: bool = False):
    """Connection config of a SQLite store (created on first use unless readonly)."""
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY if readonly
        else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return config


def open_store(config):
    """A MetadataStore for a connection config (or a SQLite path)."""
    from ml_metadata import metadata_store

    if isinstance(config, str):
        config = sqlite_config(config)
    return metadata_store.MetadataStore(config)


def sqlite_file(connection_config) -> Optional[str]:
    """The SQLite file of a connection config; None for any other store (whose credentials must not
    end up in execution properties)."""
    if connection_config is not None and connection_config.HasField("sqlite"):
        return connection_config.sqlite.filename_uri or None
    return None


def producing_executions(store, artifacts: Mapping[str, Any]) -> Dict[str, int]:
    """role -> id of the execution that first output the artifact (a cached rerun reuses it)."""
    from ml_metadata.proto import metadata_store_pb2

    ids = {role: a.id for role, a in artifacts.items() if a is not None and a.id}
    producers: Dict[int, int] = {}
    for event in store.get_events_by_artifact_ids(list(ids.values())):
        if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
            known = producers.get(event.artifact_id)
            producers[event.artifact_id] = min(known, event.execution_id) if known else event.execution_id
    return {role: producers[artifact_id] for role, artifact_id in ids.items() if artifact_id in producers}
