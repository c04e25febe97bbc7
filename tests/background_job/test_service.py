"""The assembled background_job worker over many jobs: bounded threads, bounded calls, nothing lost."""

from __future__ import annotations

import threading

from background_job import service
from common.job_ids import job_id_for_message
from common.messages import BackgroundJob
from common.names import BACKGROUND_JOB_SERVICE
from common.sqs.shutdown import Shutdown
from tests.conftest import AwsFleet
from tests.consumer_thread import consumer_running
from tests.waiting import wait_until

JOBS = 500
WAVE = 50  # moto's SQS is O(queue depth) per call: keep the queue shallow
CONCURRENCY = 8


def _enqueue_wave(fleet: AwsFleet, start: int) -> None:
    for first in range(start, start + WAVE, 10):
        entries = []
        for number in range(first, first + 10):
            job = BackgroundJob(
                job_id_for_message(f"trigger-{number}", 1_795_300_000_000 + number),
                "main-job-processing",
                f"corr-{number}",
                {"trigger": "load", "data": {"n": number}},
                "2026-11-22T10:00:00Z",
            )
            entries.append({"Id": str(number), "MessageBody": job.to_body()})
        fleet.sqs.send_message_batch(QueueUrl=fleet.urls.background, Entries=entries)


def _succeeded(fleet: AwsFleet) -> int:
    return fleet.requests.calls["PutLogEvents"]


def test_threads_stay_flat_over_500_jobs(aws_fleet: AwsFleet) -> None:
    """Per-job log handlers are closed with their jobs: the thread count after 500 jobs equals that after 50."""
    shutdown = Shutdown()
    settings = aws_fleet.settings(BACKGROUND_JOB_SERVICE, concurrency=CONCURRENCY, receive_wait_seconds=1)
    consumer = service.build(settings, shutdown, sqs=aws_fleet.sqs, logs=aws_fleet.logs)
    # Threads an earlier test left ending are not this test's: count only the threads started here.
    before = set(threading.enumerate())
    snapshots = []
    with consumer_running(consumer, shutdown):
        for start in range(0, JOBS, WAVE):
            _enqueue_wave(aws_fleet, start)
            wait_until(
                lambda s=start: _succeeded(aws_fleet) >= s + WAVE, timeout=60, what=f"jobs {start}..{start + WAVE}"
            )
            wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (0, 0), timeout=30, what="deletes")
            snapshots.append(len(_started_since(before)))

    # loop + settler + visibility heartbeat + job watchdog + the metrics flush timer + at most one pool thread
    # per slot, after every wave; no job-log thread survives its job (a leak of one per job would pass the
    # bound in the second wave). Not "first == last": the pool starts its threads as slots fill, so a
    # loaded machine may reach full concurrency only in a later wave (a flake under the full suite).
    assert max(snapshots) <= 5 + CONCURRENCY, snapshots
    assert [] == _started_since(before)


def _started_since(before: set[threading.Thread]) -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread not in before]


def test_every_job_costs_exactly_two_cloudwatch_logs_calls(aws_fleet: AwsFleet) -> None:
    """Across 100 short jobs: one CreateLogStream and one PutLogEvents each, no DescribeLogStreams."""
    shutdown = Shutdown()
    settings = aws_fleet.settings(BACKGROUND_JOB_SERVICE, concurrency=CONCURRENCY, receive_wait_seconds=1)
    consumer = service.build(settings, shutdown, sqs=aws_fleet.sqs, logs=aws_fleet.logs)
    with consumer_running(consumer, shutdown):
        for start in range(0, 100, WAVE):
            _enqueue_wave(aws_fleet, start)
            wait_until(lambda s=start: _succeeded(aws_fleet) >= s + WAVE, timeout=60, what="jobs")
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (0, 0), timeout=30, what="deletes")

    logs_calls = {name: count for name, count in aws_fleet.requests.calls.items() if "Log" in name}
    assert {"CreateLogStream": 100, "PutLogEvents": 100} == logs_calls
    streams = aws_fleet.logs.describe_log_streams(logGroupName=aws_fleet.names.background_job_log_group, limit=50)
    assert all(stream["logStreamName"].startswith("job-streams/") for stream in streams["logStreams"])
