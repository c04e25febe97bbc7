"""Per-job CloudWatch log streams: ``job-streams/YYYY-MM-DD/<jobId>`` in the background-job log group.

A job's thread only buffers its events (as JSON that fits CloudWatch's limits, see
:mod:`common.job_log.events`); the process's shared shipper (:mod:`common.job_log.shipper`) creates the
stream as the job opens its log, and ships the events at close and every :data:`SEND_INTERVAL_SECONDS`
while a job runs. A short job costs exactly CreateLogStream and one PutLogEvents, as before, but no
thread of its own (watchtower started and joined one per job, about a third of a no-op job's CPU).
Creating the stream while the job runs leaves only the put between a job's end and its settlement: at
the close, the create used to cost the job's slot one more round trip to Logs.

The job log is a side channel and never decides a message's fate:

- ``close()`` waits for its flush at most :data:`CLOSE_TIMEOUT_SECONDS`; a slower flush carries on on the
  shipper and its outcome is still delivered or sent to the fallback, so a slow or failing Logs delays
  settlement by at most that bound (it was up to a minute of botocore retries). The worker does not
  wait in the job's thread: it calls ``end()``, which only flushes, and settles the message from
  ``when_shipped()``, with the same bound, so the job's slot takes the next message while the put runs
  (waiting for it was 4.4 ms of a 200 ms job's 205.6 ms in its slot).
- No method raises into the caller: a failure inside (Logs, a log processor, a broken stdout) is counted
  through ``on_delivery_failure`` and reported once per cause on stderr (:mod:`common.job_log.fallback`).
- Events Logs did not store go to stdout as ``job_log.undelivered`` warnings (with ``job_id``, for ``fleet
  job``) and are counted: never lost silently, never re-put after Logs accepted them; a put that went
  unanswered is re-sent once, each event marked ``resent`` (:mod:`common.job_log.delivery`).
- During a sustained outage (failing or slow calls in a row, not one fault) the shared
  :class:`OutageBreaker` sends flushes straight to the fallback and lets one probe through at a time
  (:mod:`common.job_log.breaker`).
- What the job logs hold unshipped is bounded (:class:`common.job_log.shipper.Backlog`): past the bound an
  event goes to stdout at once; at exit what is still held goes to stdout (:meth:`JobLog.abandon`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from common.job_ids import job_timestamp, require_job_id
from common.job_log.breaker import SLOW_CALL_SECONDS, OutageBreaker, Ticket
from common.job_log.calls import own_retries
from common.job_log.delivery import StreamTarget, create_stream, deliver
from common.job_log.events import EVENT_OVERHEAD_BYTES, LogEvent, encode
from common.job_log.fallback import DeliveryFailureCallback, Shield, count, report_once, write_undelivered
from common.job_log.shipper import Shipper
from common.logging import get_logger
from common.names import JOB_STREAM_ROOT

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

__all__ = ["CLOSE_TIMEOUT_SECONDS", "SEND_INTERVAL_SECONDS", "JobLog", "OutageBreaker", "job_stream_name"]

log = get_logger(__name__)
#: A job that runs longer than this ships what it has so far; short jobs ship once, at close. It bounds
#: what a worker killed mid-job (OOM, SIGKILL) loses from the attempt's stream, so keep it short: at 30 s
#: a job killed in its first half-minute left no trace of that attempt (found by the reliability suite).
SEND_INTERVAL_SECONDS: Final = 5
#: The longest ``close()`` waits for the job's last flush before the job's outcome is settled.
CLOSE_TIMEOUT_SECONDS: Final = 2.0


def job_stream_name(job_id: str) -> str:
    """The stream name; the date is the ULID's, so a retry on another day lands in the same stream."""
    checked = require_job_id(job_id)  # a stream name may not contain ':' or '*': only a ULID gets here
    return f"{JOB_STREAM_ROOT}/{job_timestamp(checked):%Y-%m-%d}/{checked}"


class JobLog:
    """The log of one job. Use as a context manager around the job's execution."""

    def __init__(
        self,
        *,
        logs: CloudWatchLogsClient,
        log_group: str,
        job_id: str,
        context: Mapping[str, Any],
        on_delivery_failure: DeliveryFailureCallback,
        breaker: OutageBreaker,
        clock: Callable[[], float] = time.time,
        shipper: Shipper | None = None,
    ) -> None:
        self.stream_name = job_stream_name(job_id)
        self._target = StreamTarget(logs, log_group, self.stream_name)
        self._context = {"jobId": job_id, **context}
        self._on_delivery_failure = on_delivery_failure
        self._breaker = breaker
        self._clock = clock
        self._shipper = shipper
        self._lock = threading.Lock()
        self._pending: list[LogEvent] = []
        self._shipping = False
        self._closed = False
        self._idle = threading.Event()
        self._idle.set()
        self._stream_ready = False
        self._waiting: list[_Once] = []
        #: Events taken by the running drain, until Logs took them or they went to stdout.
        self._in_flight: list[LogEvent] = []
        #: Events (and bytes) this log holds in the shipper's backlog.
        self._held: tuple[int, int] = (0, 0)
        self._abandoned = False
        #: Whether an event carried the identity (``_context``) yet: only the first one does.
        self._identity_sent = False

    def __enter__(self) -> JobLog:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the stream on a shipper thread and start the periodic flush; the job waits for neither."""
        with Shield("job_log.open", self._on_delivery_failure):
            own_retries(self._target.logs)
            with self._lock:  # flushes wait for the stream: the create counts as this log's running drain
                self._shipping = True
                self._idle.clear()
                self._ship_with().submit(self._prepare)
            self._ship_with().every(SEND_INTERVAL_SECONDS, self._tick)

    def close(self) -> None:
        """Flush what is left and wait for it, at most :data:`CLOSE_TIMEOUT_SECONDS`."""
        self.end()
        with Shield("job_log.close", self._on_delivery_failure):
            if not self._idle.wait(CLOSE_TIMEOUT_SECONDS):
                self._report_overdue()

    def end(self) -> None:
        """Flush what is left without waiting for it; the job's events after this still ship."""
        with Shield("job_log.close", self._on_delivery_failure), self._lock:
            self._closed = True
            self._flush_locked()

    def when_shipped(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when what was logged is shipped (or in the fallback), at the latest
        :data:`CLOSE_TIMEOUT_SECONDS` from now; on a shipper thread, or here if nothing is in flight.

        Not shielded: the caller must learn of a failure here, or the callback might never come.
        """
        once = _Once(callback)
        with self._lock:
            shipped = self._idle.is_set()
            if not shipped:
                self._waiting.append(once)
        if shipped:
            once()
            return
        self._ship_with().every(CLOSE_TIMEOUT_SECONDS, lambda: self._overdue(once))

    def _overdue(self, once: _Once) -> bool:
        """The ticker, one bound after ``when_shipped``: settle now; the flush carries on on the shipper."""
        if once():
            self._report_overdue()
        return False

    def _report_overdue(self) -> None:
        log.warning("job_log.close_timed_out", stream=self.stream_name, waited_seconds=CLOSE_TIMEOUT_SECONDS)

    def event(self, name: str, level: str = "info", **fields: Any) -> None:  # noqa: ANN401
        """Record ``name`` (a stable event name such as ``job.started``) with JSON-safe ``fields``."""
        with Shield("job_log.event", self._on_delivery_failure):
            now = self._clock()
            with self._lock:
                identity, self._identity_sent = ({} if self._identity_sent else self._context), True
            # The job's identity goes once, on the attempt's first event (job.started): the stream name
            # already carries the jobId, and CloudWatch stores each event's time, so neither is repeated
            # (issue 28: they were two thirds of every event's bytes). ``fleet job`` reads the time from
            # the event and the identity from the first event that has it.
            record = {**fields, **identity, "level": level, "message": name}
            entry = LogEvent(int(now * 1000), encode(record))
            with self._lock:
                held = self._hold_locked(entry)
                if held:
                    self._pending.append(entry)
                    if self._closed:  # an event after close still ships
                        self._flush_locked()
            if not held:
                self._fall_back("job_log.backlog_full", "the job logs' unshipped backlog is full", [entry])

    def info(self, name: str, **fields: Any) -> None:  # noqa: ANN401
        self.event(name, "info", **fields)

    def warning(self, name: str, **fields: Any) -> None:  # noqa: ANN401
        self.event(name, "warning", **fields)

    def error(self, name: str, **fields: Any) -> None:  # noqa: ANN401
        self.event(name, "error", **fields)

    def _ship_with(self) -> Shipper:
        return self._shipper or self._breaker.shipper

    def _hold_locked(self, entry: LogEvent) -> bool:
        """Count ``entry`` into the shipper's backlog; False when it is full (or the process is exiting)."""
        shipper = self._ship_with()
        if self._abandoned or not shipper.backlog.reserve(_size(entry)):
            return False
        events, size = self._held
        if events == 0:
            shipper.hold(self)
        self._held = (events + 1, size + _size(entry))
        return True

    def _release_locked(self, shipped: list[LogEvent]) -> None:
        """``shipped`` are in the stream or on stdout: count them out of the backlog."""
        if self._abandoned or not shipped:
            return
        size = sum(_size(event) for event in shipped)
        events, held = self._held
        self._held = (events - len(shipped), held - size)
        shipper = self._ship_with()
        shipper.backlog.release(len(shipped), size)
        if self._held[0] == 0:
            shipper.let_go(self)

    def flush(self) -> None:
        """Ship what is buffered now (the worker is exiting), instead of at the next tick."""
        with Shield("job_log.flush", self._on_delivery_failure), self._lock:
            self._flush_locked()

    def abandon(self) -> int:
        """The process is exiting: every event still held (buffered, queued or in a call) goes to stdout.

        An event whose put is in flight may reach the stream as well: in one place or two, never neither.
        """
        with self._lock:
            events = self._in_flight + self._pending
            self._pending = []
            self._release_locked(events)
            self._abandoned = True
            waiting = self._go_idle_locked() if not self._in_flight else []
        if events:
            self._fall_back("job_log.unshipped_at_exit", "the worker exited before these were shipped", events)
        _call_all(waiting)
        return len(events)

    def _tick(self) -> bool:
        """The shipper's ticker: flush a running job's events; stop once it is closed."""
        with self._lock:
            if self._closed:
                return False
            self._flush_locked()
            return True

    def _flush_locked(self) -> None:
        if self._shipping or not self._pending:
            return  # a running drain picks up what was added meanwhile
        self._shipping = True
        self._idle.clear()
        self._ship_with().submit(self._drain)

    def _prepare(self) -> None:
        """On a shipper thread: create the stream, then ship at once only if the job has closed meanwhile.

        A tick that came during the create waits for the next one: shipping the first events now would
        cost a short job a second PutLogEvents.
        """
        with Shield("job_log.create", self._on_delivery_failure):
            self._create_stream()
        with self._lock:
            waiting = None if self._closed and self._pending else self._go_idle_locked()
        if waiting is None:
            self._drain()
        else:
            _call_all(waiting)

    def _create_stream(self) -> None:
        ticket = self._breaker.allow()
        if ticket is None:
            return  # an outage: the first flush goes to the fallback, or creates the stream once Logs is back
        started = time.monotonic()
        failed = create_stream(self._target)
        self._stream_ready = failed is None  # if not, the first flush tries again and reports what fails
        outage = failed is not None and failed.failure.is_outage
        self._tell_breaker(ticket, outage=outage, seconds=time.monotonic() - started)

    def _tell_breaker(self, ticket: Ticket, *, outage: bool, seconds: float) -> None:
        """A failed call, or one slower than SLOW_CALL_SECONDS, counts towards an outage; others close it."""
        if outage or seconds > SLOW_CALL_SECONDS:
            self._breaker.failed(ticket)
        else:
            self._breaker.succeeded(ticket)

    def _drain(self) -> None:
        """On a shipper thread: ship until nothing is pending, one flush at a time per stream (order)."""
        while True:
            with self._lock:
                events, self._pending = self._pending, []
                self._in_flight = events
                waiting = [] if events else self._go_idle_locked()
            if not events:
                _call_all(waiting)
                return
            with Shield("job_log.ship", self._on_delivery_failure):
                self._ship(events)
            with self._lock:
                self._in_flight = []
                self._release_locked(events)

    def _go_idle_locked(self) -> list[_Once]:
        """Nothing more to ship: returns the ``when_shipped`` callbacks, to be called outside the lock."""
        self._shipping = False
        self._idle.set()
        waiting, self._waiting = self._waiting, []
        return waiting

    def _ship(self, events: list[LogEvent]) -> None:
        ticket = self._breaker.allow()
        if ticket is None:
            self._fall_back("job_log.unavailable", "CloudWatch Logs outage: waiting for the next probe", events)
            return
        delivery = deliver(self._target, events, stream_ready=self._stream_ready)
        self._stream_ready = delivery.stream_ready
        outage = delivery.failure is not None and delivery.failure.failure.is_outage
        self._tell_breaker(ticket, outage=outage, seconds=delivery.slowest_seconds)
        if delivery.undelivered:
            summary = "job_log.delivery_failed" if delivery.stream_ready else "job_log.unavailable"
            self._fall_back(summary, str(delivery.failure), delivery.undelivered)
        if delivery.rejected:
            self._fall_back("job_log.rejected", "PutLogEvents rejected these events", delivery.rejected)

    def _fall_back(self, summary: str, error: str, events: list[LogEvent]) -> None:
        count(self._on_delivery_failure)
        try:
            job_id = str(self._context["jobId"])
            write_undelivered(summary, job_id=job_id, stream=self.stream_name, error=error, events=events)
        except Exception as failure:  # noqa: BLE001 - stdout is gone: stderr says so once, the count stands
            report_once("job_log.fallback", failure)


def _size(event: LogEvent) -> int:
    """What an event costs the backlog: its JSON (ASCII, so characters are bytes) and Logs' overhead."""
    return len(event.message) + EVENT_OVERHEAD_BYTES


class _Once:
    """A callback that runs at most once, whichever of the flush and the bound comes first."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._called = False

    def __call__(self) -> bool:
        with self._lock:
            if self._called:
                return False
            self._called = True
        self._callback()
        return True


def _call_all(waiting: list[_Once]) -> None:
    for once in waiting:
        try:
            once()
        except Exception as failure:  # noqa: BLE001 - one caller's callback must not keep the others waiting
            report_once("job_log.when_shipped", failure)
