"""Where a registry lives, picked once by the URI's scheme (as MLflow picks its store):

- `sqlite:`  the embedded store of a home: promote/rollback lock with a file lock next to the
  database, run artifacts under `<home>/mlartifacts`, sources are local paths;
- `http(s):` a tracking server: it cannot read a client's disk, so a local SavedModel is uploaded
  as run artifacts; the lock is a registered model whose creation is atomic in the server's store;
- any other database URI (postgresql:, mysql:, ...): a shared database reached directly, locked
  like a server, sources left as they are.
"""
from __future__ import annotations

import contextlib
import os
import random
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable, Iterator, Optional

from components import locks
from components.registry.tags import ARTIFACTS_DIRNAME, LOCK_TIMEOUT_S, STALE_LOCK_S, TRACKING_URI_ENV


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why (and what to do)."""


def redact(uri: str) -> str:
    """A URI without its password, for messages."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.password:
        netloc = parsed.netloc.replace(":" + parsed.password + "@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return uri


def is_local_path(path: str) -> bool:
    return urllib.parse.urlparse(path).scheme in ("", "file")


class Store:
    """A registry store: what differs between kinds of stores, and nothing else."""

    def __init__(self, uri: str):
        self.uri = uri

    @property
    def location(self) -> str:
        """The store, for messages (no password)."""
        return redact(self.uri)

    def prepare(self) -> None:
        """Make the store usable before the first client call."""

    def missing(self) -> Optional[str]:
        """Why a reading command should not touch this store (it was never created), else None."""
        return None

    def check(self, timeout: float = 10.0) -> None:
        """One bounded request: RegistryError naming the store when it cannot be reached."""

    def artifact_location(self) -> Optional[str]:
        """Where new experiments keep run artifacts (None: the store's default)."""
        return None

    def model_source(self, client, run_id: str, pushed_path: str) -> str:
        """The source of a new model version for a SavedModel pushed to pushed_path."""
        return pushed_path

    def exclusive(self, client, name: str, on_wait: Optional[Callable[[str], None]]):
        """Context manager serialising promote/rollback of one registered model."""
        return _model_lock(client, name, on_wait)


class EmbeddedStore(Store):
    """SQLite `<home>/mlflow.db`."""

    @property
    def path(self) -> Path:
        if self.uri.startswith("sqlite:///"):
            return Path(self.uri[len("sqlite:///"):])
        return Path(urllib.parse.urlparse(self.uri).path)

    @property
    def location(self) -> str:
        return str(self.path)

    def prepare(self) -> None:
        self.check()
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def check(self, timeout: float = 10.0) -> None:
        """Refuse a database that exists but is no intact SQLite file: MLflow would silently create an
        empty registry in a zero-byte file (losing every version) and trace back on a damaged one."""
        problem = damaged_sqlite(self.path, timeout)
        if problem:
            raise RegistryError(
                f"the model registry {self.path} {problem}; restore it from a backup (it holds every registered "
                f"version and alias), or move it away to start an empty registry; nothing was changed"
            )

    def missing(self) -> Optional[str]:
        if self.path.exists():
            return None
        return (
            f"no model registry at {self.path}: nothing was registered yet (a blessed `mlops run` registers "
            f"its model), or set {TRACKING_URI_ENV} to use a registry server"
        )

    def artifact_location(self) -> Optional[str]:
        return (self.path.parent / ARTIFACTS_DIRNAME).as_uri()

    @contextlib.contextmanager
    def exclusive(self, client, name: str, on_wait: Optional[Callable[[str], None]]) -> Iterator[None]:
        """A file lock next to the database (released by the kernel even if the process dies)."""
        path = Path(str(self.path) + ".lock")

        def waiting(holder):
            if on_wait:
                on_wait(f"registry lock {path} held by {locks.describe(holder)}")

        try:
            with locks.file_lock(path, wait_s=LOCK_TIMEOUT_S, on_wait=waiting, operation="promote/rollback"):
                yield
        except locks.LockHeld as exc:
            raise RegistryError(
                f"registry lock {path} still held by {locks.describe(exc.holder)} after {LOCK_TIMEOUT_S:.0f}s"
            ) from None


SQLITE_HEADER = b"SQLite format 3\x00"


def damaged_sqlite(path: Path, timeout: float = 10.0) -> Optional[str]:
    """Why the SQLite file at path is unusable (empty, not SQLite, failing SQLite's quick_check), None
    when it is intact or absent. A lock held by a writer is no damage."""
    import sqlite3

    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not header:
        return "is empty (0 bytes): it was truncated or never written"
    if header != SQLITE_HEADER:
        return "is not an SQLite database (its first bytes are not SQLite's header)"
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        try:
            result = [row[0] for row in connection.execute("PRAGMA quick_check").fetchall()]
        finally:
            connection.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None
        return f"is damaged ({exc})"
    except sqlite3.DatabaseError as exc:
        return f"is damaged ({exc})"
    if result != ["ok"]:
        return f"is damaged (SQLite's quick_check: {'; '.join(map(str, result[:2]))})"
    return None


# MLflow's own defaults retry an unreachable server for minutes (7 retries, backoff factor 2,
# 120 s timeout). A command or a pipeline step should fail within seconds and say why; a user who
# wants more patience sets these variables.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


class ServerStore(Store):
    """An MLflow tracking server."""

    def prepare(self) -> None:
        for name, value in HTTP_LIMITS.items():
            os.environ.setdefault(name, value)

    def check(self, timeout: float = 10.0) -> None:
        import urllib.error
        import urllib.request

        url = self.uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if response.status == 200:
                    return
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            problem = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else str(reason)
        raise RegistryError(
            f"the model registry at {self.location} does not answer ({problem}); start it, or unset "
            f"{TRACKING_URI_ENV} to use the embedded registry of --home"
        )

    def model_source(self, client, run_id: str, pushed_path: str) -> str:
        if not is_local_path(pushed_path):
            return pushed_path
        local = urllib.parse.urlparse(pushed_path).path if pushed_path.startswith("file:") else pushed_path
        client.log_artifacts(run_id, local, "saved_model")
        return f"runs:/{run_id}/saved_model"


SCHEMES = {"sqlite": EmbeddedStore, "http": ServerStore, "https": ServerStore}


def store_for(uri: str) -> Store:
    """The store kind of a registry URI (any scheme not named in SCHEMES is a database MLflow reaches
    directly)."""
    return SCHEMES.get(urllib.parse.urlparse(uri).scheme, Store)(uri)


@contextlib.contextmanager
def _model_lock(client, name: str, on_wait: Optional[Callable[[str], None]]) -> Iterator[None]:
    """The lock is a registered model `<name>.mlops-lock`, created to acquire and deleted to release:
    creating a registered model is atomic in the store (unique name), so at most one client holds
    it. A lock left by a crashed client is broken after STALE_LOCK_S."""
    from mlflow.exceptions import MlflowException

    from components.registry.tags import LOCK_MODEL_SUFFIX

    lock_name = name + LOCK_MODEL_SUFFIX
    token = f"{who()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    told = False
    while True:
        try:
            client.create_registered_model(
                lock_name,
                tags={"holder": token, "since": now_iso()},
                description="promote/rollback lock of `mlops registry`; deleted when the operation ends",
            )
            break
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                # The server's insert hit the holder's row, and the holder released it before the
                # server looked that row up to report it (MLflow's SqlAlchemyStore does exactly
                # this): the lock is free now, try again.
                continue
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        try:
            lock = client.get_registered_model(lock_name)
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
                client.delete_registered_model(lock_name)
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
            client.delete_registered_model(lock_name)


def now_iso(seconds: Optional[float] = None) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(time.time() if seconds is None else seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")


def who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"
