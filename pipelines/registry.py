"""The model registry (MLflow Model Registry): register blessed models, promote, roll back, resolve.

Shared by the Registrar component and `mlops registry`. No argparse here.

Where the registry lives:
- `MLFLOW_TRACKING_URI` set: that server (or database) is both the tracking and the registry store;
- otherwise the embedded store: SQLite `<home>/mlflow.db`, run artifacts under `<home>/mlartifacts`.

Versions are registered model versions named after the task ("census"). A version may be promoted
only if it carries the tag `blessed=true`, which only the Registrar writes, and only for a model the
Evaluator blessed and the Pusher pushed. The promotion history of each alias is a JSON list in the
registered model's tag `mlops.promotions.<alias>`; promote and rollback hold a lock while they
read the history, move the alias and append to the history (see `Registry.exclusive`).
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import random
import socket
import subprocess
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
DB_FILENAME = "mlflow.db"
ARTIFACTS_DIRNAME = "mlartifacts"
DEFAULT_ALIAS = "production"

# Model version tags written by the Registrar.
TAG_BLESSED = "blessed"
TAG_TASK = "task"
TAG_PIPELINE = "pipeline"
TAG_PIPELINE_RUN_ID = "pipeline_run_id"
TAG_PUSHED_PATH = "pushed_model_path"
TAG_MODEL_URI = "trainer_model_uri"
TAG_GIT_COMMIT = "git_commit"
TAG_GIT_DIRTY = "git_dirty"
TAG_DATA_MD5 = "dvc_data_md5"
TAG_DATA_DIRTY = "dvc_data_dirty"
TAG_HYPERPARAMETERS = "hyperparameters"
TAG_SLICE_METRICS = "slice_metrics"
TAG_MLMD_STORE = "mlmd.store"
METRIC_TAG_PREFIX = "metric."
MLMD_EXECUTION_TAG = "mlmd.{}_execution_id"
MLMD_ARTIFACT_TAG = "mlmd.{}_artifact_id"

HISTORY_TAG_PREFIX = "mlops.promotions."
# A registered model whose existence is the promote/rollback lock on a server (see _server_lock).
LOCK_MODEL_SUFFIX = ".mlops-lock"

# Registry tag values may hold 100,000 characters; keep the promotion history well below that.
MAX_HISTORY_ENTRIES = 400
LOCK_TIMEOUT_S = 60.0
# A server lock older than this was left by a crashed process and is broken.
STALE_LOCK_S = 600.0


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why (and what to do)."""


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


def sqlite_path(uri: str) -> Optional[Path]:
    """The database file of a sqlite:/// URI, None for any other store."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    return Path(uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else parsed.path)


def is_server(uri: str) -> bool:
    return urllib.parse.urlparse(uri).scheme in ("http", "https")


def _is_local_path(path: str) -> bool:
    scheme = urllib.parse.urlparse(path).scheme
    return scheme in ("", "file")


def code_version(root: os.PathLike | str) -> Dict[str, Any]:
    """{'commit': HEAD or 'unknown', 'dirty': bool or None} of the git checkout holding root."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        status = git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": head.stdout.strip(), "dirty": dirty}


# --------------------------------------------------------------------------------------------
# What a version is


@dataclass
class VersionInfo:
    name: str
    version: int
    source: str
    status: str
    created_ms: int
    run_id: Optional[str]
    description: Optional[str]
    tags: Dict[str, str] = field(default_factory=dict)
    aliases: List[str] = field(default_factory=list)

    @property
    def blessed(self) -> bool:
        return self.tags.get(TAG_BLESSED) == "true"

    @property
    def pushed_path(self) -> Optional[str]:
        return self.tags.get(TAG_PUSHED_PATH)

    @property
    def created(self) -> str:
        return _iso(self.created_ms / 1000.0)

    @classmethod
    def from_mlflow(cls, mv) -> "VersionInfo":
        return cls(
            name=mv.name,
            version=int(mv.version),
            source=mv.source,
            status=str(mv.status),
            created_ms=int(mv.creation_timestamp or 0),
            run_id=mv.run_id or None,
            description=mv.description or None,
            tags=dict(mv.tags or {}),
            aliases=list(mv.aliases or []),
        )


@dataclass
class ModelSummary:
    name: str
    versions: int
    latest: Optional[int]
    aliases: Dict[str, int]


@dataclass
class Promotion:
    name: str
    alias: str
    version: int
    previous: Optional[int]
    action: str  # promote | rollback | unchanged


def _iso(seconds: Optional[float] = None) -> str:
    moment = datetime.datetime.fromtimestamp(time.time() if seconds is None else seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def replay(history: List[Mapping[str, Any]]) -> List[int]:
    """The stack of versions an alias went through: promote pushes a version, rollback pops one.

    The top is where the alias should point; the one below is where a rollback takes it.
    """
    stack: List[int] = []
    for entry in history:
        version = int(entry["version"])
        if entry.get("action") == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack


# --------------------------------------------------------------------------------------------
# The registry


class Registry:
    """One MLflow tracking + registry store, addressed by URI."""

    def __init__(self, uri: str):
        self.uri = uri
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
        db = sqlite_path(registry.uri)
        if must_exist and db is not None and not db.exists():
            raise RegistryError(
                f"no model registry at {db}: nothing was registered yet (a blessed `mlops run` registers "
                f"its model), or set {TRACKING_URI_ENV} to use a registry server"
            )
        return registry

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            db = sqlite_path(self.uri)
            if db is not None:
                db.parent.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    @property
    def location(self) -> str:
        db = sqlite_path(self.uri)
        return str(db) if db is not None else _redact(self.uri)

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
        """Every version of a registered model, oldest first."""
        self._model(name)
        found = []
        token = None
        quoted = name.replace("'", "\\'")
        while True:
            page = self.client.search_model_versions(f"name='{quoted}'", page_token=token)
            found.extend(VersionInfo.from_mlflow(mv) for mv in page)
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda v: v.version)

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

    def resolve(self, name: str, alias: str) -> VersionInfo:
        """The version an alias points to."""
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
        db = sqlite_path(self.uri)
        location = (db.parent / ARTIFACTS_DIRNAME).as_uri() if db is not None else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
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
            source = pushed_path
            if is_server(self.uri) and _is_local_path(pushed_path):
                local = urllib.parse.urlparse(pushed_path).path if pushed_path.startswith("file:") else pushed_path
                self.client.log_artifacts(run_id, local, "saved_model")
                source = f"runs:/{run_id}/saved_model"
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
        """Point alias at a blessed version and append the move to the alias's history."""
        number = _version_number(version)
        _check_alias(alias)
        info = self.version(name, number)
        _check_blessed(info)
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
            _check_blessed(self.version(name, target))
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

    @contextlib.contextmanager
    def exclusive(self, name: str, on_wait: Optional[Callable[[str], None]] = None) -> Iterator[None]:
        """Serialise promote/rollback: MLflow has no transactions across calls.

        Embedded SQLite store: fcntl.flock on `<db>.lock` next to the database (released by the
        kernel even if the process dies). Any other store: the lock is a registered model named
        `<name>.mlops-lock`, created to acquire and deleted to release; creating a registered
        model is atomic in the store (unique name), so at most one client holds it. A lock left
        by a crashed client is broken after STALE_LOCK_S.
        """
        db = sqlite_path(self.uri)
        if db is not None:
            with _file_lock(Path(str(db) + ".lock"), on_wait):
                yield
        else:
            with self._server_lock(name + LOCK_MODEL_SUFFIX, on_wait):
                yield

    @contextlib.contextmanager
    def _server_lock(self, lock_name: str, on_wait) -> Iterator[None]:
        from mlflow.exceptions import MlflowException

        token = f"{_who()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        told = False
        while True:
            try:
                self.client.create_registered_model(
                    lock_name,
                    tags={"holder": token, "since": _iso()},
                    description="promote/rollback lock of `mlops registry`; deleted when the operation ends",
                )
                break
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            try:
                lock = self.client.get_registered_model(lock_name)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    continue  # released meanwhile
                raise
            holder = (lock.tags or {}).get("holder", "?")
            if holder == token:  # our create went through but its response was lost and retried
                break
            age = time.time() - (lock.creation_timestamp or 0) / 1000.0
            if age > STALE_LOCK_S:
                with contextlib.suppress(MlflowException):
                    self.client.delete_registered_model(lock_name)
                continue
            if not told and on_wait:
                on_wait(f"registry lock {lock_name} held by {holder}")
                told = True
            if time.monotonic() > deadline:
                raise RegistryError(
                    f"registry lock {lock_name} is held by {holder} since {(lock.tags or {}).get('since', '?')}; "
                    f"if no promote/rollback is running, delete the registered model {lock_name!r}"
                )
            time.sleep(0.2 + random.random() * 0.3)
        try:
            yield
        finally:
            with contextlib.suppress(MlflowException):
                self.client.delete_registered_model(lock_name)


@contextlib.contextmanager
def _file_lock(path: Path, on_wait) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                if not told and on_wait:
                    on_wait(f"registry lock {path} held by {holder}")
                    told = True
                if time.monotonic() > deadline:
                    raise RegistryError(f"registry lock {path} still held by {holder} after {LOCK_TIMEOUT_S:.0f}s") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{_who()} pid {os.getpid()} since {_iso()}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# helpers


def _entry(action: str, version: int, previous: Optional[int]) -> Dict[str, Any]:
    return {"action": action, "version": version, "previous": previous, "at": _iso(), "by": _who()}


def _version_number(version: int | str) -> int:
    text = str(version).strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    if not text.isdigit() or int(text) < 1:
        raise RegistryError(f"not a version number: {version!r} (expected e.g. 3 or v3)")
    return int(text)


def _check_alias(alias: str) -> None:
    import re

    if not re.fullmatch(r"[\w\-]+", alias) or re.fullmatch(r"[vV]\d+", alias) or alias.lower() == "latest":
        raise RegistryError(f"invalid alias {alias!r}: letters, digits, _ and -, not 'latest' or v<N>")


def _check_blessed(info: VersionInfo) -> None:
    if not info.blessed:
        raise RegistryError(
            f"{info.name} v{info.version} is not blessed (no tag {TAG_BLESSED}=true): only models the "
            f"Evaluator blessed and the Registrar registered can be promoted"
        )


def _no_model_message(name: str, location: str) -> str:
    from pipelines.config import KNOWN_TASKS

    message = f"no registered model {name!r} in {location}"
    if name not in KNOWN_TASKS:
        message += f"; known tasks: {', '.join(sorted(KNOWN_TASKS))}"
    return message


def _short(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _redact(uri: str) -> str:
    """A URI without its password, for messages."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.password:
        netloc = parsed.netloc.replace(":" + parsed.password + "@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return uri
