"""The model registry client (MLflow Model Registry): register blessed models, promote, roll back,
resolve. Shared by the Registrar component and `mlops registry`. No argparse here.

Where the registry lives (`resolve_uri`):
- `MLFLOW_TRACKING_URI` set: that server (or database) is both the tracking and the registry store;
- otherwise the embedded store: SQLite `<home>/mlflow.db`, run artifacts under `<home>/mlartifacts`.
What differs between those stores (locking, where artifacts go, uploads) is decided once, by the
URI's scheme, in `components.registry.stores`.

Versions are registered model versions named after the task ("census"). A version may be promoted
only if it carries the tag `blessed=true`, which only the Registrar writes, and only for a model the
Evaluator blessed and the Pusher pushed. The promotion history of each alias is a JSON list in the
registered model's tag `mlops.promotions.<alias>`; promote and rollback hold a lock while they
read the history, move the alias and append to the history (see `Registry.exclusive`).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from components.registry import evidence
from components.registry.stores import RegistryError, Store, now_iso, store_for, who
from components.registry.versions import ModelSummary, Promotion, VersionInfo, replay
from components.registry.tags import (
    DB_FILENAME, DEFAULT_ALIAS, HISTORY_TAG_PREFIX, LOCK_MODEL_SUFFIX, MAX_HISTORY_ENTRIES, TAG_BLESSED,
    TAG_PUSHED_PATH, TAG_TASK, TRACKING_URI_ENV,
)


# --------------------------------------------------------------------------------------------
# Where the registry is


def default_uri(home: os.PathLike | str) -> str:
    """The embedded store of a local home: sqlite:///<home>/mlflow.db."""
    return "sqlite:///" + str(Path(home).resolve() / DB_FILENAME)


def resolve_uri(home: Optional[os.PathLike | str] = None, configured: Optional[str] = None) -> str:
    """MLFLOW_TRACKING_URI when set, else the configured URI, else the embedded store under home."""
    uri = os.environ.get(TRACKING_URI_ENV) or configured
    if uri:
        return uri
    if home is None:
        raise RegistryError(f"no model registry configured: set {TRACKING_URI_ENV} or give a home directory")
    return default_uri(home)


# --------------------------------------------------------------------------------------------
# The registry


class Registry:
    """One MLflow tracking + registry store, addressed by URI."""

    def __init__(self, uri: str):
        self.uri = uri
        self.store: Store = store_for(uri)
        self._client = None

    @classmethod
    def open(
        cls, home: Optional[os.PathLike | str] = None, configured: Optional[str] = None, must_exist: bool = False
    ) -> "Registry":
        """The registry for a home (embedded SQLite) unless MLFLOW_TRACKING_URI names another one.

        must_exist: refuse an embedded store that was never created (reading commands should not
        create an empty database as a side effect).
        """
        registry = cls(resolve_uri(home, configured))
        missing = registry.store.missing() if must_exist else None
        if missing:
            raise RegistryError(missing)
        return registry

    def check(self, timeout: float = 10.0) -> "Registry":
        """Fail fast (one bounded request) when the store cannot be reached; returns self."""
        self.store.check(timeout)
        return self

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            self.store.prepare()
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    @property
    def location(self) -> str:
        return self.store.location

    # ---- reading

    def models(self) -> List[ModelSummary]:
        found = []
        token = None
        while True:
            page = self.client.search_registered_models(max_results=100, page_token=token)
            for model in page:
                if model.name.endswith(LOCK_MODEL_SUFFIX):
                    continue
                versions = self.versions(model.name)
                found.append(
                    ModelSummary(
                        name=model.name,
                        versions=len(versions),
                        latest=max((v.version for v in versions), default=None),
                        aliases={a: int(v) for a, v in (model.aliases or {}).items()},
                    )
                )
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda m: m.name)

    def _model(self, name: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(_no_model_message(name, self.location)) from None
            raise

    def versions(self, name: str) -> List[VersionInfo]:
        """Every version of a registered model, oldest first, with its aliases (MLflow's version
        search returns none, so they come from the registered model)."""
        model = self._model(name)
        aliases: Dict[int, List[str]] = {}
        for alias, number in (model.aliases or {}).items():
            aliases.setdefault(int(number), []).append(alias)
        found = []
        token = None
        quoted = name.replace("'", "\\'")
        while True:
            page = self.client.search_model_versions(f"name='{quoted}'", page_token=token)
            found.extend(VersionInfo.from_mlflow(mv) for mv in page)
            token = page.token
            if not token:
                break
        for info in found:
            info.aliases = sorted(set(info.aliases) | set(aliases.get(info.version, [])))
        return sorted(found, key=lambda v: v.version)

    def evidence(self, info: VersionInfo, model_dir: Optional[str] = None) -> List[str]:
        """What the version lacks to be promoted or used ([] when sound; components.registry.evidence)."""
        return evidence.missing_evidence(self, info, model_dir)

    def verified(self, info: VersionInfo, action: str = "served", model_dir: Optional[str] = None) -> VersionInfo:
        """info, once it shows the Registrar's evidence (the check promote makes); RegistryError
        naming what it lacks otherwise. Every read that vouches for a version goes through here."""
        evidence.verify(self, info, action, model_dir)
        return info

    def version(self, name: str, version: int | str) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        number = _version_number(version)
        model = self._model(name)
        try:
            return VersionInfo.from_mlflow(self.client.get_model_version(name, str(number)))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                latest = max((int(v.version) for v in model.latest_versions or []), default=None)
                known = f"latest is v{latest}" if latest else "it has no versions"
                raise RegistryError(f"{name} has no version {number} ({known})") from None
            raise

    def alias_version(self, name: str, alias: str) -> Optional[int]:
        target = (self._model(name).aliases or {}).get(alias)
        return int(target) if target is not None else None

    def baseline(self, name: str, alias: str = DEFAULT_ALIAS) -> Tuple[Optional[VersionInfo], str]:
        """The version a new candidate must beat, and how it was chosen: the version behind `alias`,
        else the newest blessed version, else None (the task's first model)."""
        try:
            model = self._model(name)
        except RegistryError:
            return None, f"no registered model {name!r} yet"
        target = (model.aliases or {}).get(alias)
        if target is not None:
            info = self.version(name, target)
            _check_blessed(info)
            return self.verified(info, "used as the baseline"), f"{name}@{alias}"
        blessed = [v for v in self.versions(name) if v.blessed and not self.evidence(v)]
        if blessed:
            return blessed[-1], f"the newest blessed version; {name} has no alias {alias!r}"
        return None, f"{name} has no blessed version yet"

    def resolve(self, name: str, alias: str) -> VersionInfo:
        """The version an alias points to (as registered; callers that use it call verified())."""
        target = self.alias_version(name, alias)
        if target is None:
            raise RegistryError(f"{name} has no alias {alias!r}; promote a version first (`mlops registry promote {name} VERSION --alias {alias}`)")
        return self.version(name, target)

    def history(self, name: str, alias: str = DEFAULT_ALIAS) -> List[Dict[str, Any]]:
        raw = (self._model(name).tags or {}).get(HISTORY_TAG_PREFIX + alias)
        if not raw:
            return []
        try:
            history = json.loads(raw)
        except ValueError:
            raise RegistryError(f"the promotion history of {name}@{alias} (tag {HISTORY_TAG_PREFIX + alias}) is not JSON") from None
        return list(history)

    def find_by_pushed_path(self, name: str, pushed_path: str) -> Optional[VersionInfo]:
        try:
            versions = self.versions(name)
        except RegistryError:
            return None
        for info in versions:
            if info.tags.get(TAG_PUSHED_PATH) == pushed_path:
                return info
        return None

    # ---- writing

    def ensure_model(self, name: str, description: Optional[str] = None) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
            return
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            self.client.create_registered_model(name, tags={TAG_TASK: name}, description=description)
        except MlflowException as exc:  # another pipeline created it meanwhile
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=self.store.artifact_location())
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    def register(
        self,
        name: str,
        pushed_path: str,
        tags: Mapping[str, str],
        *,
        experiment: str,
        run_name: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        metrics: Optional[Mapping[str, float]] = None,
        record: Optional[Mapping[str, Any]] = None,
        description: Optional[str] = None,
    ) -> VersionInfo:
        """A new version of `name` for the SavedModel at pushed_path, with an MLflow run holding its
        params, overall metrics and `record` (registration.json).

        The version's source is the pushed SavedModel itself, except when a server must hold it: a
        tracking server accepts no local path as a source, so a local SavedModel is then uploaded
        as the run's `saved_model` artifacts and the source is runs:/<run>/saved_model. The serving
        path (tag pushed_model_path) is always the pushed one.
        """
        from mlflow.entities import Metric, Param

        existing = self.find_by_pushed_path(name, pushed_path)
        if existing is not None:  # the same push registered twice (a retried execution)
            return existing
        self.ensure_model(name, description=f"Blessed {name} models, registered by the mlops Registrar.")
        # Run tags hold at most 8,000 characters; the long ones (per-slice metrics) are in registration.json.
        run_tags = {k: v for k, v in tags.items() if len(v) <= 5000}
        run = self.client.create_run(self._experiment_id(experiment), run_name=run_name, tags=run_tags)
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
                params=[Param(k, _short(v, 6000)) for k, v in (params or {}).items()],
            )
            if record:
                self.client.log_dict(run_id, dict(record), "registration.json")
            source = self.store.model_source(self.client, run_id, pushed_path)
            mv = self.client.create_model_version(
                name, source, run_id=run_id, tags=dict(tags), description=description
            )
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id)
        return VersionInfo.from_mlflow(mv)

    def promote(
        self, name: str, version: int | str, alias: str = DEFAULT_ALIAS, on_wait: Optional[Callable[[str], None]] = None
    ) -> Promotion:
        """Point alias at a version with the Registrar's evidence (components.registry.evidence) and
        append the move to the alias's history."""
        number = _version_number(version)
        _check_alias(alias)
        info = self.version(name, number)
        evidence.verify(self, info)
        with self.exclusive(name, on_wait):
            history = self.history(name, alias)
            current = self.alias_version(name, alias)
            if current == number and replay(history)[-1:] == [number]:
                return Promotion(name, alias, number, current, "unchanged")
            info = self.version(name, number)  # it may have been deleted while we waited
            _check_blessed(info)
            history.append(_entry("promote", number, current))
            self._write(name, alias, number, history)
        return Promotion(name, alias, number, current, "promote")

    def rollback(
        self, name: str, alias: str = DEFAULT_ALIAS, on_wait: Optional[Callable[[str], None]] = None
    ) -> Promotion:
        """Move alias back to the version promoted before the current one."""
        _check_alias(alias)
        self._model(name)
        with self.exclusive(name, on_wait):
            history = self.history(name, alias)
            current = self.alias_version(name, alias)
            stack = replay(history)
            if current is None:
                raise RegistryError(f"{name} has no alias {alias!r}: nothing to roll back")
            if not stack or stack[-1] != current:
                recorded = f"v{stack[-1]}" if stack else "nothing"
                raise RegistryError(
                    f"{name}@{alias} points to v{current} but its promotion history ends at {recorded}: the alias "
                    f"was moved outside `mlops registry` or a promote/rollback was interrupted; promote the version "
                    f"you want explicitly"
                )
            if len(stack) < 2:
                raise RegistryError(f"{name}@{alias} (v{current}) has no earlier promotion to roll back to")
            target = stack[-2]
            evidence.verify(self, self.version(name, target))
            history.append(_entry("rollback", target, current))
            self._write(name, alias, target, history)
        return Promotion(name, alias, target, current, "rollback")

    def _write(self, name: str, alias: str, version: int, history: List[Dict[str, Any]]) -> None:
        # History first: if the process dies in between, rollback sees the mismatch and refuses
        # instead of acting on a history that misses a move.
        history = history[-MAX_HISTORY_ENTRIES:]
        self.client.set_registered_model_tag(name, HISTORY_TAG_PREFIX + alias, json.dumps(history))
        self.client.set_registered_model_alias(name, alias, str(version))

    # ---- locking

    def exclusive(self, name: str, on_wait: Optional[Callable[[str], None]] = None):
        """Serialise promote/rollback: MLflow has no transactions across calls (how depends on the
        store, see components.registry.stores)."""
        return self.store.exclusive(self.client, name, on_wait)


# --------------------------------------------------------------------------------------------
# helpers


def _entry(action: str, version: int, previous: Optional[int]) -> Dict[str, Any]:
    return {"action": action, "version": version, "previous": previous, "at": now_iso(), "by": who()}


def _version_number(version: int | str) -> int:
    text = str(version).strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    if not text.isdigit() or int(text) < 1:
        raise RegistryError(f"not a version number: {version!r} (expected e.g. 3 or v3)")
    return int(text)


def _check_alias(alias: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_\-]+", alias) or re.fullmatch(r"[vV]\d+", alias) or alias.lower() == "latest":
        raise RegistryError(f"invalid alias {alias!r}: letters, digits, _ and -, not 'latest' or v<N>")


def _check_blessed(info: VersionInfo) -> None:
    if not info.blessed:
        raise RegistryError(
            f"{info.name} v{info.version} is not blessed (no tag {TAG_BLESSED}=true): only models the "
            f"Evaluator blessed and the Registrar registered can be promoted"
        )


def _no_model_message(name: str, location: str) -> str:
    return f"no registered model {name!r} in {location} (a blessed `mlops run {name}` registers one)"


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
