"""The CloudWatch Logs outage breaker shared by every job log of a process: half-open, one probe at a time.

Closed, every shipment goes to Logs. The first shipment that fails as an outage (no answer, a 5xx,
throttling that outlasted its retries) opens it: shipments then go straight to the fallback instead of
each spending its retries on a service that is down. While open, exactly one shipment at a time is let
through as a probe once the probe is due; its success closes the breaker at once (so delivery resumes
as soon as Logs answers, not a fixed cooldown later) and its failure pushes the next probe out,
doubling from :data:`FIRST_PROBE_SECONDS` up to the configured cooldown (LOGS_OUTAGE_COOLDOWN_SECONDS is
the longest wait between probes). Found by a fault probe: with a fixed 30 s cooldown tripped as the
emulator resumed, the 130 jobs run in that window had no stream at all.
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

    def failed(self, ticket: Ticket) -> None:
        """An outage: open, or after a failed probe wait twice as long (up to the cooldown) for the next."""
        with self._lock:
            if ticket.probe:
                self._probing = False
                self._wait = min(self._max_wait, max(self._wait * 2, self._first_wait))
            elif self._open:
                return  # a shipment let through before the breaker opened: the probe schedule stands
            else:
                self._open = True
                self._wait = self._first_wait
            self._next_probe = self._clock() + self._wait

    def is_open(self) -> bool:
        """True while an outage is assumed (between the first failure and the first successful probe)."""
        with self._lock:
            return self._open

    def trip(self) -> None:
        """Open as if a shipment had just failed (kept for callers of the earlier API)."""
        self.failed(_CLOSED)
