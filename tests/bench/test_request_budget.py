"""Counted, never timed: what a batch of short jobs costs in AWS requests, and that nothing piles up.

Both real services run in this process on moto, assembled exactly as their entry points assemble
them, with the RequestCounter (botocore event hooks) on their clients. The figures guarded here are
the ones ``python -m bench`` measures on moto server (docs/performance.md).
"""

from __future__ import annotations

import gc
import threading

from common.job_log.log import JobLog
from common.settings import DEFAULT_WORKER_CONCURRENCY
from common.sqs.shutdown import Shutdown
from tests.bench.fleet_run import build_consumers, run_jobs, send_triggers, uncounted_sqs
from tests.conftest import AwsFleet
from tests.consumer_thread import consumers_running

JOBS = 100
WAVES = 10
#: Long enough that an idle consumer does not spin on empty receives, short enough to stop quickly.
RECEIVE_WAIT_SECONDS = 5


def _open_log_handlers() -> int:
    """Job logs still alive and not yet ended: one left behind by a finished job is a leak."""
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, JobLog) and not thing._closed)


def test_a_batch_of_100_short_jobs_costs_at_most_2_6_requests_per_job(aws_fleet: AwsFleet) -> None:
    """100 triggers through main_job and background_job cost <= 2.6 AWS requests per job, end to end."""
    sqs = uncounted_sqs()
    shutdown = Shutdown()
    consumers = build_consumers(
        aws_fleet, shutdown, concurrency=DEFAULT_WORKER_CONCURRENCY, receive_wait_seconds=RECEIVE_WAIT_SECONDS
    )
    send_triggers(sqs, aws_fleet.urls.trigger, JOBS)
    with consumers_running(consumers, shutdown, join_seconds=60):
        calls = run_jobs(aws_fleet, sqs, JOBS, send=False)

    assert (JOBS, JOBS) == (calls.get("CreateLogStream"), calls.get("PutLogEvents"))
    assert JOBS // 10 == calls.get("SendMessageBatch")
    assert 0 == calls.get("ChangeMessageVisibilityBatch", 0) + calls.get("DeleteMessage", 0)
    assert sum(calls.values()) / JOBS <= 2.6, calls


def test_threads_and_open_log_handlers_return_to_baseline_after_1000_jobs(aws_fleet: AwsFleet) -> None:
    """After 1,000 jobs in waves of 100, the thread count and open job-log handlers are back where they began."""
    sqs = uncounted_sqs()
    shutdown = Shutdown()
    threads_before, handlers_before = threading.active_count(), _open_log_handlers()
    consumers = build_consumers(
        aws_fleet, shutdown, concurrency=DEFAULT_WORKER_CONCURRENCY, receive_wait_seconds=RECEIVE_WAIT_SECONDS
    )
    per_wave: list[tuple[int, int]] = []
    with consumers_running(consumers, shutdown, join_seconds=60):
        for _ in range(WAVES):
            run_jobs(aws_fleet, sqs, JOBS)  # one wave at a time keeps moto's queues shallow
            per_wave.append((threading.active_count(), _open_log_handlers()))

    assert WAVES * JOBS == aws_fleet.requests.calls["PutLogEvents"]
    assert per_wave[0] == per_wave[-1], per_wave
    assert 0 == per_wave[-1][1]
    assert (threads_before, handlers_before) == (threading.active_count(), _open_log_handlers())
