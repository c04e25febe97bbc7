"""Time limits on running attempts, enforced outside the job's thread.

Every attempt a :class:`~common.sqs.dispatch.PoolDispatcher` starts runs under a limit: the worker's
default (``JOB_TIMEOUT_SECONDS``) from the moment its slot starts it, which the handler may set again
for its job type (:func:`limit_current_attempt`) once it knows it. A watchdog thread of the dispatcher
checks the deadlines; at one, the attempt is settled as a timeout failure (retried through visibility
with backoff, dead-lettered on the last receive, its ledger lease recorded ``failed`` like any failure)
while the job's thread, which Python cannot kill, may still be running.

That thread keeps its pool slot until it returns: the slot is *lost*. Whatever the late thread then
returns is discarded, because a lease settles once (``Lease.finish`` is first-wins) and the ledger
records only the settled outcome. Lost slots make the worker unfit to keep going when too few live
slots remain or one has hung too long (:class:`Fitness`): it then stops receiving, settles or releases
what it owns and exits with :data:`EXIT_SLOTS_LOST`, so that ECS (or the local supervisor) replaces it.

Threads, not a process per job, because a job's slot must share the process's boto3 clients, job-log
shipper and ledger batches; the price is that a hung native call keeps its thread, its memory and its
pool slot until the process is replaced, which is what the exit is for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

#: EX_SOFTWARE from sysexits.h: the worker's own slots are stuck; a replacement can do better.
EXIT_SLOTS_LOST: Final = 70

_current = threading.local()


@dataclass(slots=True)
class Attempt:
    """One running attempt's clock: when its slot started it and when it must be done (monotonic)."""

    started: float
    limit_seconds: float
    #: Set by the watchdog when the deadline passed; the late thread's outcome is then discarded.
    timed_out: bool = False
    #: Set when the handler returned; one of the two is decided first, under the dispatcher's lock.
    returned: bool = False

    @property
    def deadline(self) -> float:
        return self.started + self.limit_seconds


@contextmanager
def attempt_running(attempt: Attempt) -> Iterator[None]:
    """Make ``attempt`` the current thread's, for the handler to read and refine."""
    _current.attempt = attempt
    try:
        yield
    finally:
        _current.attempt = None


def current_attempt() -> Attempt | None:
    """The attempt the current thread runs under, if a dispatcher with time limits started it."""
    attempt: Attempt | None = getattr(_current, "attempt", None)
    return attempt


def limit_current_attempt(seconds: float) -> float | None:
    """Set the running attempt's limit (counted from its start); returns its new deadline, or None."""
    attempt = current_attempt()
    if attempt is None:
        return None
    attempt.limit_seconds = seconds
    return attempt.deadline


@dataclass(frozen=True, slots=True)
class Fitness:
    """When lost slots make a worker unfit to go on, and when its health check should fail.

    - ``min_live_share``: the worker exits once fewer than this share of its slots are live;
    - ``hung_exit_seconds``: it exits once a lost slot has hung this long past its deadline;
    - ``hung_unhealthy_seconds``: its health check fails once a lost slot has hung this long.
    """

    min_live_share: float
    hung_exit_seconds: float
    hung_unhealthy_seconds: float

    def exit_reason(self, concurrency: int, lost: list[Attempt], now: float) -> str | None:
        live = concurrency - len(lost)
        if live < self.min_live_share * concurrency:
            share = f"{self.min_live_share:g}"
            return f"{len(lost)} of {concurrency} slots lost to timed-out jobs (live share below {share})"
        hung = _longest_hang(lost, now)
        if hung >= self.hung_exit_seconds:
            return f"a timed-out job has held its slot {hung:.0f}s past its deadline"
        return None

    def unhealthy_reason(self, lost: list[Attempt], now: float) -> str | None:
        hung = _longest_hang(lost, now)
        if lost and hung >= self.hung_unhealthy_seconds:
            return f"unhealthy: a job slot held {hung:.0f}s past its deadline ({len(lost)} slot(s) lost)"
        return None


def _longest_hang(lost: list[Attempt], now: float) -> float:
    return max((now - attempt.deadline for attempt in lost), default=0.0)


class Watchdog:
    """A daemon thread that calls ``expire()`` at least every ``period`` seconds until stopped.

    Deadlines may move (a handler sets its job type's limit after its slot started), so the watchdog
    polls at a short period instead of sleeping until the earliest deadline it saw.
    """

    def __init__(self, expire: Callable[[], None], period: float = 0.25) -> None:
        self._expire = expire
        self._period = period
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        self._thread = threading.Thread(target=self._run, name="job-watchdog", daemon=True)

    def start(self) -> None:
        """Idempotent: the first call starts the thread."""
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread's last turn, so a stopped worker leaves no thread behind."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self._period):
            self._expire()
