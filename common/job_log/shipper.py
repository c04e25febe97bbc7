"""The threads that ship job logs: one small pool and one ticker per process, shared by every job.

watchtower started a thread (and a queue) per job stream and joined it at close: thread start-up and
the hand-offs were about a third of a no-op job's CPU, and a slow Logs held the job's slot in the join.
Here the job's own thread only buffers; a flush is a task on a shared pool whose threads are all
started with the shipper (created with the process's outage breaker, before the first job) and then
reused, so threads alive stay flat however many jobs run; one ticker thread asks long-running jobs to
flush every few seconds. The pool has several threads because each call waits on
the network: one thread would serialise every job's CreateLogStream and PutLogEvents.

What the shipper holds is bounded (:class:`Backlog`): every event a job logs is counted from the moment
it is buffered until Logs took it or it went to stdout. Past :data:`MAX_BACKLOG_EVENTS` events or
:data:`MAX_BACKLOG_BYTES` bytes, a new event goes straight to stdout as ``job_log.undelivered`` (summary
``job_log.backlog_full``, with its jobId, so ``fleet job`` finds it in the service's log group). A slow
Logs used to grow the queue without bound: with 0.5 s puts, 72 job logs were still unshipped when all
96 messages had settled. At exit, :func:`close_shared_shipper` waits a short bound for the calls in
flight, then writes every event still held to stdout (summary ``job_log.unshipped_at_exit``): what was
queued at exit used to be lost with the process.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

import structlog

from common.job_log.fallback import report_once

#: Shipper threads per process, all started with the shipper.
SHIPPER_THREADS: Final = 8
#: The most events, and bytes of events, the process's job logs hold unshipped (buffered, queued or in a
#: call) before new events go straight to stdout: about 2,500 short jobs' logs, a few MiB at most.
MAX_BACKLOG_EVENTS: Final = 10_000
MAX_BACKLOG_BYTES: Final = 8 * 1024 * 1024
#: How long the exit waits for calls in flight before writing what is still held to stdout.
EXIT_WAIT_SECONDS: Final = 2.0

#: A ticker callback returns True to be called again one interval later.
Tick = Callable[[], bool]


class Holder(Protocol):
    """A job log holding events in the backlog."""

    def flush(self) -> None:
        """Ship what is buffered now, instead of at the next tick."""
        ...

    def abandon(self) -> int:
        """Write every event still held to stdout and release them; returns how many."""
        ...


class Backlog:
    """Counts the events the process's job logs hold unshipped, against the bounds; closed at exit."""

    def __init__(self, max_events: int = MAX_BACKLOG_EVENTS, max_bytes: int = MAX_BACKLOG_BYTES) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._changed = threading.Condition()
        self._events = 0
        self._bytes = 0
        self._closed = False
        self.high_events = 0
        self.high_bytes = 0
        self.refused = 0

    def reserve(self, size: int) -> bool:
        """Count one event of ``size`` bytes in, or False: full (or closed), it goes to stdout instead."""
        with self._changed:
            if self._closed or self._events + 1 > self.max_events or self._bytes + size > self.max_bytes:
                self.refused += 1
                return False
            self._events += 1
            self._bytes += size
            self.high_events = max(self.high_events, self._events)
            self.high_bytes = max(self.high_bytes, self._bytes)
            return True

    def release(self, events: int, size: int) -> None:
        """Shipped or on stdout: count them out."""
        with self._changed:
            self._events -= events
            self._bytes -= size
            self._changed.notify_all()

    def close(self, timeout: float) -> None:
        """Refuse new events; wait at most ``timeout`` for the held ones to be shipped."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._closed = True
            while self._events > 0 and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)

    def held(self) -> tuple[int, int]:
        with self._changed:
            return self._events, self._bytes


class Shipper:
    """Runs flushes on a shared pool and periodic ticks on one thread."""

    def __init__(self, threads: int = SHIPPER_THREADS, backlog: Backlog | None = None) -> None:
        self.backlog = backlog or Backlog()
        self._holders: set[Holder] = set()
        self._holders_lock = threading.Lock()
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

    def hold(self, holder: Holder) -> None:
        """``holder`` has events in the backlog: :meth:`close` asks it to abandon them if they outlast it."""
        with self._holders_lock:
            self._holders.add(holder)

    def let_go(self, holder: Holder) -> None:
        with self._holders_lock:
            self._holders.discard(holder)

    def close(self, timeout: float = EXIT_WAIT_SECONDS) -> dict[str, int]:
        """At exit: new events go to stdout, what is buffered is shipped now and gets ``timeout`` with the
        calls in flight, then every event still held goes to stdout. Returns the exit line's figures."""
        with self._holders_lock:
            holders = list(self._holders)
        for holder in holders:  # a running job's buffer would otherwise wait for its next tick
            try:
                holder.flush()
            except Exception as error:  # noqa: BLE001 - one job log must not keep the others from shipping
                report_once("job_log.flush", error)
        self.backlog.close(timeout)
        with self._holders_lock:
            holders, self._holders = list(self._holders), set()
        abandoned = 0
        for holder in holders:
            try:
                abandoned += holder.abandon()
            except Exception as error:  # noqa: BLE001 - one job log must not keep the others from stdout
                report_once("job_log.abandon", error)
        return {
            "unshipped_events_to_stdout": abandoned,
            "backlog_high_events": self.backlog.high_events,
            "backlog_high_bytes": self.backlog.high_bytes,
            "backlog_max_events": self.backlog.max_events,
            "backlog_max_bytes": self.backlog.max_bytes,
            "events_refused_by_backlog": self.backlog.refused,
        }

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


def close_shared_shipper(timeout: float = EXIT_WAIT_SECONDS) -> None:
    """The worker's exit: nothing the process's job logs still hold is lost (a no-op if none ever ran)."""
    with _shared_lock:
        shipper = _shared
    if shipper is None:
        return
    try:
        figures = shipper.close(timeout)
        structlog.get_logger("common.job_log.shipper").info("job_log.shipper_closed", **figures)
    except Exception as error:  # noqa: BLE001 - the exit must go on whatever the side channel does
        report_once("job_log.shipper_close", error)
