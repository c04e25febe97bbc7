"""Turning job records into figures: throughput over the steady part of a run, and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.processes import JobRecord
from common.job_ids import job_timestamp

#: The first jobs of a run include process warm-up (imports, first connections): leave them out.
WARMUP_SHARE = 0.1


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; ``share`` in (0, 1]. NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return float(ordered[rank - 1])


def throughput(records: Sequence[JobRecord]) -> float:
    """Jobs per second between the end of warm-up and the last job, by the workers' own clocks."""
    finished = sorted(record.finished_ms for record in records)
    first = int(len(finished) * WARMUP_SHARE)
    span_ms = finished[-1] - finished[first] if len(finished) > first + 1 else 0
    return (len(finished) - 1 - first) / (span_ms / 1000) if span_ms > 0 else math.nan


def trigger_sent_ms(job_id: str) -> int:
    """When the trigger was sent: the job ID's time part is the trigger's SentTimestamp."""
    return int(job_timestamp(job_id).timestamp() * 1000)


def latency_ms(records: Sequence[JobRecord]) -> dict[str, dict[str, float]]:
    """p50/p95/p99 from trigger sent to job started and to job finished."""
    started: list[float] = []
    finished: list[float] = []
    for record in records:
        sent = trigger_sent_ms(record.job_id)
        finished.append(record.finished_ms - sent)
        started.append(record.finished_ms - record.duration_ms - sent)
    return {
        name: {f"p{int(share * 100)}": percentile(values, share) for share in (0.5, 0.95, 0.99)}
        for name, values in (("started", started), ("finished", finished))
    }
