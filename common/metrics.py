"""CloudWatch Embedded Metric Format (EMF) lines on stdout.

On ECS the awslogs driver ships stdout to CloudWatch Logs, which extracts EMF lines into metrics: no
PutMetricData call, no agent, no extra latency on the job path. The emitter is a dozen lines, so we
keep it in-house rather than take ``aws-embedded-metrics``, whose default ECS sink expects a
CloudWatch agent sidecar that this fleet does not run.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TextIO

from common import side_channels
from common.logging import write_line

DIMENSION_SERVICE: Final = "Service"

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

UNITS: Final[Mapping[str, str]] = {
    TRIGGERS_RECEIVED: "Count",
    TRIGGERS_REJECTED: "Count",
    BACKGROUND_JOBS_QUEUED: "Count",
    JOBS_SUCCEEDED: "Count",
    JOBS_FAILED: "Count",
    JOBS_TIMED_OUT: "Count",
    JOB_DURATION: "Milliseconds",
    JOB_QUEUE_LATENCY: "Milliseconds",
    JOB_LOG_DELIVERY_FAILURES: "Count",
    JOBS_DUPLICATE_SKIPPED: "Count",
    JOBS_CANCELLED: "Count",
}


@dataclass(slots=True)
class MetricsEmitter:
    """Writes one EMF line per call (thread-safe); a failed write is counted, never raised (issue 16)."""

    namespace: str
    service: str
    stream: TextIO = field(default_factory=lambda: sys.stdout)

    def emit(self, values: Mapping[str, float], **properties: str | int) -> None:
        """Publish ``values`` (metric name to value); ``properties`` are searchable, not dimensions."""
        unknown = set(values) - set(UNITS)
        if unknown:
            raise ValueError(f"unknown metric(s): {sorted(unknown)}")
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [[DIMENSION_SERVICE]],
                        "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
                    }
                ],
            },
            DIMENSION_SERVICE: self.service,
            **properties,
            **values,
        }
        write_line(self.stream, json.dumps(document, separators=(",", ":")), side_channels.METRICS)
