"""A wall-clock limit for student code (``SIGALRM`` where the platform and thread allow it)."""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class CheckTimeout(Exception):
    """Raised inside student code that ran past its time limit."""


def _alarm_available() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`CheckTimeout` if the block runs longer than ``seconds``.

    Uses a real-time interval timer, so it works on Linux and macOS in the main thread (where
    Jupyter kernels and the command line run code). Elsewhere (Windows, worker threads) the
    block runs without a limit. A long single C operation is interrupted only once it returns.
    """
    if seconds is None or seconds <= 0 or not _alarm_available():
        yield
        return

    def on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
        raise CheckTimeout(f"took longer than {seconds:g} s (an endless loop, or a Python loop over every element?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
