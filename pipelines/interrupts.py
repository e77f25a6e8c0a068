"""SIGTERM and SIGINT as an exception, for commands that must clean up when stopped (`mlops registry
reproduce`: its child run and its git worktree). Python's default SIGTERM ends the process without
unwinding: no `finally` runs, children are reparented and keep going."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(BaseException):
    """A BaseException, so no `except Exception` on the way out swallows it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGTERM and SIGINT raise Interrupted (every time: cleanup that must not be cut
    short runs under held())."""
    if not _main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handler(signum, _frame):
        raise Interrupted(signum)

    for sig in SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGTERM and SIGINT wait until the block ends (then they are delivered)."""
    if not _main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(SIGNALS))
