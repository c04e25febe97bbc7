"""The threads that ship job logs: one small pool and one ticker per process, shared by every job.

watchtower started a thread (and a queue) per job stream and joined it at close: thread start-up and
the hand-offs were about a third of a no-op job's CPU, and a slow Logs held the job's slot in the join.
Here the job's own thread only buffers; a flush is a task on a shared pool whose threads are all
started with the shipper (created with the process's outage breaker, before the first job) and then
reused, so threads alive stay flat however many jobs run; one ticker thread asks long-running jobs to
flush every few seconds. The pool has several threads because each call waits on
the network: one thread would serialise every job's CreateLogStream and PutLogEvents.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Final

from common.job_log.fallback import report_once

#: Shipper threads per process, all started with the shipper.
SHIPPER_THREADS: Final = 8

#: A ticker callback returns True to be called again one interval later.
Tick = Callable[[], bool]


class Shipper:
    """Runs flushes on a shared pool and periodic ticks on one thread."""

    def __init__(self, threads: int = SHIPPER_THREADS) -> None:
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._due: list[tuple[float, int, float, Tick]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        # Daemon threads: a flush is bounded by one attempt per call, and the worker settles and closes
        # every job (and so its flush) before it exits.
        for number in range(threads):
            threading.Thread(target=self._run_tasks, name=f"job-log-shipper-{number}", daemon=True).start()
        self._ticker = threading.Thread(target=self._run_ticker, name="job-log-ticker", daemon=True)
        self._ticker.start()

    def submit(self, task: Callable[[], None]) -> None:
        """Run ``task`` on a shipper thread; it must not raise (the job log shields its own tasks)."""
        self._tasks.put(task)

    def every(self, interval: float, tick: Tick) -> None:
        """Call ``tick`` on the ticker thread every ``interval`` seconds for as long as it returns True."""
        with self._wake:
            self._schedule(time.monotonic() + interval, interval, tick)

    def _schedule(self, due: float, interval: float, tick: Tick) -> None:
        first = not self._due or due < self._due[0][0]
        heapq.heappush(self._due, (due, next(self._order), interval, tick))
        if first:  # later entries are found when the ticker wakes for the earlier one
            self._wake.notify()

    def _run_tasks(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                task()
            except Exception as error:  # noqa: BLE001 - a shipper thread must outlive any one job log
                report_once("job_log.ship", error)

    def _run_ticker(self) -> None:
        while True:
            for interval, tick in self._take_due():
                try:
                    again = tick()
                except Exception as error:  # noqa: BLE001 - the ticker must outlive any one job log
                    report_once("job_log.tick", error)
                    again = False
                if again:
                    with self._wake:
                        self._schedule(time.monotonic() + interval, interval, tick)

    def _take_due(self) -> list[tuple[float, Tick]]:
        with self._wake:
            while True:
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    break
                self._wake.wait(timeout=self._due[0][0] - now if self._due else None)
            due: list[tuple[float, Tick]] = []
            while self._due and self._due[0][0] <= now:
                _, _, interval, tick = heapq.heappop(self._due)
                due.append((interval, tick))
            return due


_shared: Shipper | None = None
_shared_lock = threading.Lock()


def shared_shipper() -> Shipper:
    """The process's shipper, created on first use."""
    global _shared  # noqa: PLW0603 - one pool per process is the point
    with _shared_lock:
        if _shared is None:
            _shared = Shipper()
        return _shared
