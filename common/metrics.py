"""CloudWatch Embedded Metric Format (EMF) lines on stdout, aggregated: one line per interval, not per job.

On ECS the awslogs driver ships stdout to CloudWatch Logs, which extracts EMF lines into metrics: no
PutMetricData call, no agent, no extra latency on the job path. The emitter is short, so we keep it
in-house rather than take ``aws-embedded-metrics``, whose default ECS sink expects a CloudWatch agent
sidecar that this fleet does not run.

Why aggregate (issue 28): one EMF line per job cost 568 bytes + 26 bytes of event overhead in Logs, a
fifth of a no-op job's log bill. The emitter now holds what it is given per group (the same properties)
and writes one document per group when :data:`FLUSH_INTERVAL_SECONDS` have passed, when a metric holds
:data:`MAX_VALUES` values, when the minute changes, and at exit (:func:`flush_all`). In the document:

* a ``Count`` metric is the group's sum, one value: the alarms and the failure-rate expression use
  ``Sum`` (tf/cloudwatch.tf), which a sum keeps exactly;
* any other metric (durations, latencies) is the array of its values, so ``p90``/``Average``/``Maximum``
  see every sample. The EMF specification allows an array of up to 100 values per metric
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html),
  hence :data:`MAX_VALUES`.

What a ``kill -9`` loses: the metrics of at most one interval (never a job, never a log line: metrics
are a side channel). A clean exit writes everything held.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TextIO

from common import side_channels
from common.logging import write_line

DIMENSION_SERVICE: Final = "Service"
#: The longest a value waits for its line: short next to the alarms' 60-300 s periods.
FLUSH_INTERVAL_SECONDS: Final = 10.0
#: The EMF specification's limit on the values of one metric in one document.
MAX_VALUES: Final = 100

# Metric names, shared with tf/cloudwatch.tf (alarms) and checked by a test.
TRIGGERS_RECEIVED: Final = "TriggersReceived"
TRIGGERS_REJECTED: Final = "TriggersRejected"
BACKGROUND_JOBS_QUEUED: Final = "BackgroundJobsQueued"
JOBS_SUCCEEDED: Final = "JobsSucceeded"
JOBS_FAILED: Final = "JobsFailed"
#: Attempts settled at their time limit while the job's thread still ran (common/sqs/time_limit.py).
JOBS_TIMED_OUT: Final = "JobsTimedOut"
JOB_DURATION: Final = "JobDuration"
JOB_QUEUE_LATENCY: Final = "JobQueueLatency"
JOB_LOG_DELIVERY_FAILURES: Final = "JobLogDeliveryFailures"
#: Redeliveries of jobs the ledger shows as succeeded: deleted without running (common/ledger/client.py).
JOBS_DUPLICATE_SKIPPED: Final = "JobsDuplicateSkipped"
#: Deliveries of jobs an operator cancelled (``fleet cancel``) deleted unrun, and jobs that stopped on it.
JOBS_CANCELLED: Final = "JobsCancelled"

COUNT: Final = "Count"
UNITS: Final[Mapping[str, str]] = {
    TRIGGERS_RECEIVED: COUNT,
    TRIGGERS_REJECTED: COUNT,
    BACKGROUND_JOBS_QUEUED: COUNT,
    JOBS_SUCCEEDED: COUNT,
    JOBS_FAILED: COUNT,
    JOBS_TIMED_OUT: COUNT,
    JOB_DURATION: "Milliseconds",
    JOB_QUEUE_LATENCY: "Milliseconds",
    JOB_LOG_DELIVERY_FAILURES: COUNT,
    JOBS_DUPLICATE_SKIPPED: COUNT,
    JOBS_CANCELLED: COUNT,
}

_Properties = tuple[tuple[str, str | int], ...]
#: Every live emitter, so the worker's exit can flush them all (common/worker.py).
_EMITTERS: weakref.WeakSet[MetricsEmitter] = weakref.WeakSet()


@dataclass(slots=True)
class _Group:
    """What one group (one set of properties) holds until its next line."""

    started_ms: int
    started: float
    sums: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            if UNITS[name] == COUNT:
                self.sums[name] = self.sums.get(name, 0) + value
            else:
                self.samples.setdefault(name, []).append(value)

    def full(self) -> bool:
        return any(len(values) >= MAX_VALUES for values in self.samples.values())


@dataclass(eq=False, slots=True, weakref_slot=True)
class MetricsEmitter:
    """Aggregates values and writes EMF lines (thread-safe); a failed write is counted, never raised (issue 16).

    ``flush_interval_seconds`` None writes only when a metric is full, on :meth:`flush` and at exit.
    """

    namespace: str
    service: str
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    flush_interval_seconds: float | None = FLUSH_INTERVAL_SECONDS
    _groups: dict[_Properties, _Group] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _timer: threading.Thread | None = field(default=None, init=False)
    _closed: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        _EMITTERS.add(self)

    def emit(self, values: Mapping[str, float], **properties: str | int) -> None:
        """Add ``values`` (metric name to value) to the group of ``properties`` (searchable, not dimensions).

        Properties group the values, so they must have few distinct values (a job type, never a job ID).
        """
        unknown = set(values) - set(UNITS)
        if unknown:
            raise ValueError(f"unknown metric(s): {sorted(unknown)}")
        key = tuple(sorted(properties.items()))
        now_ms = int(time.time() * 1000)
        with self._lock:
            group = self._groups.get(key)
            if group is not None and group.started_ms // 60_000 != now_ms // 60_000:
                # A document has one Timestamp: values of the next minute start a new one.
                self._write(key, self._groups.pop(key))
                group = None
            if group is None:
                group = self._groups[key] = _Group(now_ms, time.monotonic())
            group.add(values)
            if group.full():
                self._write(key, self._groups.pop(key))
        self._start_timer()

    def flush(self, *, older_than_seconds: float = 0.0) -> None:
        """Write the groups held at least ``older_than_seconds`` (all by default)."""
        now = time.monotonic()
        with self._lock:
            due = [key for key, group in self._groups.items() if now - group.started >= older_than_seconds]
            for key in due:
                self._write(key, self._groups.pop(key))

    def close(self) -> None:
        """Stop the interval timer and write everything held (the worker's exit)."""
        self._closed.set()
        timer = self._timer
        if timer is not None and timer is not threading.current_thread():
            timer.join(timeout=5)
        self.flush()

    def _start_timer(self) -> None:
        if self._timer is not None or self.flush_interval_seconds is None or self._closed.is_set():
            return
        with self._lock:
            if self._timer is None:
                self._timer = threading.Thread(target=self._flush_periodically, name="metrics-flush", daemon=True)
                self._timer.start()

    def _flush_periodically(self) -> None:
        interval = self.flush_interval_seconds or FLUSH_INTERVAL_SECONDS
        while not self._closed.wait(interval / 4):
            with side_channels.METRICS.guard():
                self.flush(older_than_seconds=interval)

    def _write(self, key: _Properties, group: _Group) -> None:
        values: dict[str, float | list[float]] = {**group.sums, **group.samples}
        document = {
            "_aws": {
                "Timestamp": group.started_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[DIMENSION_SERVICE]],
                        "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
                    }
                ],
            },
            DIMENSION_SERVICE: self.service,
            **dict(key),
            **values,
        }
        write_line(self.stream, json.dumps(document, separators=(",", ":")), side_channels.METRICS)


def flush_all() -> None:
    """The worker's exit: every emitter writes what it holds, so a clean exit loses no metric."""
    for emitter in list(_EMITTERS):
        emitter.close()
