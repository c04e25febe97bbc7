"""The EMF emitter aggregates: a line per group and interval, not per job (common/metrics.py, issue 28)."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest

from common import metrics
from common.metrics import MAX_VALUES, MetricsEmitter
from tests.waiting import wait_until


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _job(emitter: MetricsEmitter, duration_ms: int, *, failed: bool = False) -> None:
    emitter.emit(
        {
            metrics.JOBS_SUCCEEDED: 0 if failed else 1,
            metrics.JOBS_FAILED: 1 if failed else 0,
            metrics.JOB_DURATION: duration_ms,
        },
        jobType="noop",
    )


@pytest.mark.parametrize("jobs", [1, 99, 100, 250])
def test_n_jobs_give_ceil_n_over_100_lines_with_the_right_sums(jobs: int) -> None:
    """Counts are summed and durations kept as arrays of at most 100 values (the EMF limit per metric)."""
    stream = io.StringIO()
    emitter = MetricsEmitter("Test", "background-job", stream, flush_interval_seconds=None)
    for index in range(jobs):
        _job(emitter, index, failed=index % 10 == 0)
    emitter.flush()
    lines = _lines(stream)
    assert math.ceil(jobs / MAX_VALUES) == len(lines)
    assert jobs == sum(line[metrics.JOBS_SUCCEEDED] + line[metrics.JOBS_FAILED] for line in lines)
    assert sum(1 for index in range(jobs) if index % 10 == 0) == sum(line[metrics.JOBS_FAILED] for line in lines)
    assert list(range(jobs)) == [value for line in lines for value in line[metrics.JOB_DURATION]]
    assert all(len(line[metrics.JOB_DURATION]) <= MAX_VALUES for line in lines)


def test_nothing_is_written_before_the_interval_or_a_full_metric() -> None:
    """Per-job lines were a fifth of a no-op job's log bytes: values wait for their group's line."""
    stream = io.StringIO()
    emitter = MetricsEmitter("Test", "background-job", stream, flush_interval_seconds=None)
    _job(emitter, 5)
    assert "" == stream.getvalue()


def test_each_property_set_gets_its_own_line_with_its_properties() -> None:
    """Properties are searchable fields of the line, so values of different job types are not mixed."""
    stream = io.StringIO()
    emitter = MetricsEmitter("Test", "background-job", stream, flush_interval_seconds=None)
    emitter.emit({metrics.JOBS_CANCELLED: 1}, jobType="a")
    emitter.emit({metrics.JOBS_CANCELLED: 1}, jobType="b")
    emitter.emit({metrics.JOBS_CANCELLED: 1}, jobType="a")
    emitter.flush()
    assert {"a": 2, "b": 1} == {line["jobType"]: line[metrics.JOBS_CANCELLED] for line in _lines(stream)}


def test_the_interval_timer_writes_what_is_held_without_further_calls() -> None:
    """A quiet worker's last values still reach CloudWatch within an interval, not at its next job."""
    stream = io.StringIO()
    emitter = MetricsEmitter("Test", "background-job", stream, flush_interval_seconds=0.2)
    _job(emitter, 7)
    wait_until(lambda: stream.getvalue() != "", timeout=10, what="the interval's line")
    [line] = _lines(stream)
    assert [7] == line[metrics.JOB_DURATION]
    emitter.close()


def test_flush_all_at_exit_writes_every_emitter_s_values() -> None:
    """A clean exit loses no metric: the worker calls flush_all after its loop (common/worker.py)."""
    streams = [io.StringIO(), io.StringIO()]
    emitters = [MetricsEmitter("Test", "svc", stream, flush_interval_seconds=60) for stream in streams]
    for emitter in emitters:
        _job(emitter, 3)
    metrics.flush_all()
    assert [1, 1] == [len(_lines(stream)) for stream in streams]


def test_a_full_line_stays_under_the_awslogs_16_kib_split() -> None:
    """awslogs splits lines over 16 KiB, which would break the JSON: 100 values of every metric fit."""
    stream = io.StringIO()
    emitter = MetricsEmitter("MessageDrivenFleet", "background-job", stream, flush_interval_seconds=None)
    values = {name: 3_600_000.123 for name in metrics.UNITS}
    for _ in range(MAX_VALUES):
        emitter.emit(values, jobType="x" * 64)
    [line] = stream.getvalue().splitlines()
    assert len(line.encode()) < 16 * 1024
