"""Graceful shutdown: the first SIGTERM/SIGINT asks the worker to stop, a second one exits at once.

Signal handlers live only at the entry points (``install_signal_handlers``); the worker just watches
a :class:`Shutdown` event, so tests can embed a worker and stop it without signals.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from common.logging import get_logger

log = get_logger(__name__)
EXIT_ON_SECOND_SIGNAL = 130


class Shutdown:
    """A one-way flag with a reason, shared by the loop, the dispatchers and long-running jobs."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def request(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early when shutdown is requested."""
        return self._event.wait(timeout)


def install_signal_handlers(shutdown: Shutdown) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if shutdown.is_requested():
            log.warning("worker.forced_exit", signal=name)
            os._exit(EXIT_ON_SECOND_SIGNAL)
        log.info("worker.shutdown_requested", signal=name)
        shutdown.request(f"received {name}")

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
