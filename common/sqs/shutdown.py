"""Graceful shutdown: the first SIGTERM/SIGINT asks the worker to stop, a second one exits at once.

Signal handlers live only at the entry points (``install_signal_handlers``); the worker just watches
a :class:`Shutdown` event, so tests can embed a worker and stop it without signals. The handler only
records the request: logging from it could deadlock on the lock of a log write the signal interrupted
(issue 19), so the request is logged by the consumer (``worker.shutdown_requested``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

EXIT_ON_SECOND_SIGNAL = 130


class Shutdown:
    """A one-way flag with a reason and the time it was set, shared by the loop, dispatchers and jobs."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        #: ``time.monotonic()`` when the stop was requested: the grace period runs from here.
        self.requested_at: float | None = None
        #: The process exit status the request implies (0 for a signal).
        self.exit_status = 0

    def request(self, reason: str, exit_status: int = 0) -> None:
        """Safe in a signal handler: plain stores and an Event.set(), no logging, no I/O."""
        if not self._event.is_set():
            self.reason = reason
            self.requested_at = time.monotonic()
            self.exit_status = exit_status
            self._event.set()

    def is_requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when shutdown is requested."""
        return self._event.wait(timeout)

    def deadline(self, grace_seconds: float) -> float:
        """When running work must be done: the request's time plus the grace period (ECS counts from the signal)."""
        started = self.requested_at if self.requested_at is not None else time.monotonic()
        return started + grace_seconds


def install_signal_handlers(shutdown: Shutdown) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        if shutdown.is_requested():
            os._exit(EXIT_ON_SECOND_SIGNAL)
        shutdown.request(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
