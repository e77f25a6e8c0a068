"""The model registry client library (MLflow Model Registry), used by the Registrar component and
the `mlops registry` commands: `client` (versions, promote, rollback), `stores` (what differs by
URI scheme), `tags` (the names on versions). The names below are its public API."""
from components.registry import tags
from components.registry.client import (
    ModelSummary, Promotion, Registry, VersionInfo, default_uri, replay, resolve_uri,
)
from components.registry.stores import RegistryError, redact, store_for
from components.registry.tags import *  # noqa: F403

__all__ = [
    "ModelSummary", "Promotion", "Registry", "RegistryError", "VersionInfo", "default_uri", "redact",
    "replay", "resolve_uri", "store_for", *[name for name in dir(tags) if name.isupper()],
]
