"""One inter-process lock: `fcntl.flock` on a file that also records who holds it.

Used for one pipeline run per task and home (`pipelines.local_runner`) and for promote/rollback on
an embedded registry (`components.registry`). The kernel releases the lock when the holder dies,
even by SIGKILL, so a crashed process never blocks the next one. Not re-entrant: take it once.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional


class LockHeld(RuntimeError):
    """Another process holds the lock; `holder` is its record ({} when it wrote none yet)."""

    def __init__(self, path: Path, holder: Mapping[str, Any]):
        self.path = Path(path)
        self.holder = dict(holder)
        super().__init__(f"{path} is held by {describe(holder)}")


def describe(holder: Mapping[str, Any]) -> str:
    if not holder:
        return "another process (no holder recorded yet)"
    text = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"
    extra = {k: v for k, v in holder.items() if k not in ("pid", "host", "since")}
    return text + "".join(f", {k} {v}" for k, v in extra.items())


def _read(fd: int) -> Dict[str, Any]:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}


def _write(fd: int, holder: Mapping[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(dict(holder)).encode(), 0)


class HeldLock:
    """The lock while held: `note(**fields)` adds to the holder record others see."""

    def __init__(self, fd: int):
        self._fd = fd

    def note(self, **fields: Any) -> None:
        _write(self._fd, {**_read(self._fd), **fields})


@contextlib.contextmanager
def file_lock(path: Path, *, wait_s: float = 0.0, on_wait: Optional[Callable[[Dict[str, Any]], None]] = None,
              **holder: Any) -> Iterator[HeldLock]:
    """Hold the lock on `path` for the duration, retrying for up to wait_s seconds (on_wait is told
    the holder once), else raise LockHeld. `holder` fields are recorded with pid, host and time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(_read(fd))
                    told = True
                if time.monotonic() >= deadline:
                    raise LockHeld(path, _read(fd)) from None
                time.sleep(0.05)
        _write(fd, {"pid": os.getpid(), "host": socket.gethostname(),
                    "since": datetime.datetime.now().isoformat(timespec="seconds"), **holder})
        try:
            yield HeldLock(fd)
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder_of(path: Path) -> Optional[Dict[str, Any]]:
    """The holder record while some process holds the lock, None when none does. Never blocks and
    never creates the file."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
