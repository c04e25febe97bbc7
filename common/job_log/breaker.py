"""The CloudWatch Logs outage breaker shared by every job log of a process: half-open, one probe at a time.

Closed, every shipment goes to Logs. A sustained outage opens it: :data:`OPEN_AFTER_FAILURES` shipments
in a row that failed as an outage (no answer, a 5xx, throttling that outlasted its retries) or answered
slower than :data:`SLOW_CALL_SECONDS` (a slow Logs backs the shipper up as surely as a failing one). One
failure among successes does not: at 5 % injected faults one failed call used to open the breaker for
every job of the process for a second or more, and 46 of 300 jobs lost their stream (issue 32, item 7).
Open, shipments go straight to the fallback instead of each spending its retries on a service that is
down, and exactly one shipment at a time is let through as a probe once the probe is due; its success
closes the breaker at once (so delivery resumes as soon as Logs answers, not a fixed cooldown later) and
its failure (or slowness) pushes the next probe out, doubling from :data:`FIRST_PROBE_SECONDS` up to the
configured cooldown (LOGS_OUTAGE_COOLDOWN_SECONDS is the longest wait between probes). Found by a fault
probe: with a fixed 30 s cooldown tripped as the emulator resumed, the 130 jobs run in that window had no
stream at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from common.job_log.shipper import Shipper, shared_shipper
from common.settings import DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS

#: The wait before the first probe after the breaker opens (never longer than the cooldown).
FIRST_PROBE_SECONDS: Final = 1.0
#: Outage shipments in a row (failed or slow, no success between them) that open the breaker. At 5 % of
#: calls failing independently, three failed shipments in a row come about once in 8,000 shipments; a
#: real outage fails every shipment, and opens it within the first three.
OPEN_AFTER_FAILURES: Final = 3
#: A call answered slower than this counts as a failure for the breaker (its events are delivered all the
#: same). PutLogEvents usually answers in tens of milliseconds; at 0.4 s a call, the process's eight shipper
#: threads ship fewer than ten jobs a second, fewer than one worker finishes short jobs.
SLOW_CALL_SECONDS: Final = 0.4


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission to ship once; ``probe`` says whether this shipment decides the breaker's state."""

    probe: bool


_CLOSED: Final = Ticket(probe=False)
_PROBE: Final = Ticket(probe=True)


class OutageBreaker:
    """Shared by all jobs of a process: while Logs is failing, jobs go to the fallback, one probe at a time."""

    def __init__(
        self,
        cooldown_seconds: float = DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        shipper: Shipper | None = None,
    ) -> None:
        #: The process's shipper, started here (with the worker, before its first job) so that its
        #: threads are part of the worker's fixed set rather than appearing with the first jobs.
        self.shipper = shipper or shared_shipper()
        self._max_wait = max(0.0, cooldown_seconds)
        self._first_wait = min(FIRST_PROBE_SECONDS, self._max_wait)
        self._clock = clock
        self._lock = threading.Lock()
        self._open = False
        self._wait = 0.0
        self._next_probe = 0.0
        self._probing = False
        self._failures_in_a_row = 0

    def allow(self) -> Ticket | None:
        """A ticket to ship now, or None: the breaker is open and a probe is running or not yet due."""
        with self._lock:
            if not self._open:
                return _CLOSED
            if self._probing or self._clock() < self._next_probe:
                return None
            self._probing = True
            return _PROBE

    def succeeded(self, ticket: Ticket) -> None:
        """Logs answered: close (a probe's answer, or any answer while closed, is proof enough)."""
        with self._lock:
            if ticket.probe or not self._open:
                self._open = False
                self._probing = False
                self._wait = 0.0
                self._failures_in_a_row = 0

    def failed(self, ticket: Ticket) -> None:
        """An outage shipment: open on the :data:`OPEN_AFTER_FAILURES`-th in a row, or after a failed probe
        wait twice as long (up to the cooldown) for the next."""
        with self._lock:
            if ticket.probe:
                self._probing = False
                self._wait = min(self._max_wait, max(self._wait * 2, self._first_wait))
            elif self._open:
                return  # a shipment let through before the breaker opened: the probe schedule stands
            else:
                self._failures_in_a_row += 1
                if self._failures_in_a_row < OPEN_AFTER_FAILURES:
                    return  # one failure among successes is a fault, not an outage
                self._open_locked()
            self._next_probe = self._clock() + self._wait

    def _open_locked(self) -> None:
        self._open = True
        self._wait = self._first_wait
        self._failures_in_a_row = 0

    def is_open(self) -> bool:
        """True while an outage is assumed (between the first failure and the first successful probe)."""
        with self._lock:
            return self._open

    def trip(self) -> None:
        """Open now, as a sustained outage would (kept for callers of the earlier API)."""
        with self._lock:
            if not self._open:
                self._open_locked()
                self._next_probe = self._clock() + self._wait
