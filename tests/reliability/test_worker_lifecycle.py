"""Scenarios 2-4: a worker killed mid-job, a worker stopped with SIGTERM, and a job longer than its visibility.

Each runs real worker processes; the SIGTERM scenario starts its background worker itself so that it can
signal it and read its exit status directly, as ECS would.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from common.job_ids import job_id_for_message
from common.messages import BackgroundJob
from tests.reliability.harness import (
    Fleet,
    WorkerProcess,
    events_named,
    executions,
    job_ids_by_message,
    running_fleet,
)
from tests.reliability.report import record
from tests.waiting import wait_until

KILL_SLEEP_SECONDS = 8  # longer than the job log's 5 s send interval, so attempt 1 is in the stream when killed
LONG_SLEEP_SECONDS = 14  # longer than the 10 s visibility timeout


def _trigger(job_type: str, **data: Any) -> str:
    return json.dumps({"trigger": "reliability", "jobType": job_type, "data": data})


def _job_id_of(fleet: Fleet, message_id: str) -> str:
    def derived() -> str | None:
        ids = job_ids_by_message(fleet.main_job_log()).get(message_id)
        return next(iter(ids)) if ids else None

    return wait_until(derived, timeout=30, interval=0.5, what="main-job's trigger.received")


def _stream_with(fleet: Fleet, job_id: str, event: str, count: int = 1) -> list[dict[str, Any]]:
    def shipped() -> list[dict[str, Any]] | None:
        stream = fleet.job_stream(job_id)
        return stream if sum(1 for e in stream if e["message"] == event) >= count else None

    return wait_until(shipped, timeout=90, interval=0.5, what=f"{event} in the job's stream")


def _shipped_executions(fleet: Fleet, job_id: str) -> Counter[str]:
    """Executions per jobId, once the worker's job.succeeded line has been shipped (about a second)."""
    return wait_until(
        lambda: (runs := executions(fleet.background_log()))[job_id] and runs,
        timeout=15,
        interval=0.5,
        what="the worker's job.succeeded line in its service log",
    )


def test_kill_9_mid_job_is_redelivered_after_the_visibility_timeout_and_completes() -> None:
    """The killed attempt and the retry share one stream; the job succeeds once."""
    with running_fleet("kill") as fleet:
        [message_id] = fleet.send("trigger", [_trigger("diagnostic-sleep", seconds=KILL_SLEEP_SECONDS)])
        job_id = _job_id_of(fleet, message_id)
        _stream_with(fleet, job_id, "job.started")  # attempt 1 is running and its start is shipped
        [victim] = fleet.pids("background-job-1")
        os.kill(victim, signal.SIGKILL)
        killed_at = datetime.now(UTC)
        wait_until(lambda: len(fleet.pids("background-job-1")) == 2, timeout=30, what="the supervisor's restart")
        stream = _stream_with(fleet, job_id, "job.succeeded")
        wait_until(lambda: fleet.depth("background") == (0, 0), timeout=30, what="the queue to settle")
        runs = _shipped_executions(fleet, job_id)
        exits = fleet.exits()

    started = [e for e in stream if e["message"] == "job.started"]
    retried_at = datetime.fromtimestamp(started[-1]["@timestamp"] / 1000, UTC)
    record(
        "kill_9",
        messages_in=1,
        attempts_in_stream=len(started),
        jobs_succeeded=runs[job_id],
        redelivered_after_seconds=round((retried_at - killed_at).total_seconds(), 1),
        exits=exits,
    )
    assert [1, 2] == [e["attempt"] for e in started]
    assert [False, True] == [e["redelivered"] for e in started]
    assert ["job.started", "job.step", "job.started", "job.step", "job.succeeded"] == [e["message"] for e in stream]
    assert {job_id: 1} == dict(runs)
    assert retried_at > killed_at
    assert [("background-job-1", -signal.SIGKILL)] == exits


def _background_message(name: str, seconds: float) -> tuple[str, dict[str, str], str]:
    """(body, attributes, jobId) of a background job message as main_job would enqueue it."""
    job = BackgroundJob(
        job_id=job_id_for_message(name, int(time.time() * 1000)),
        job_type="diagnostic-sleep",
        correlation_id=f"corr-{name}",
        trigger={"trigger": "reliability", "data": {"seconds": seconds}},
        enqueued_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    attributes = {name: value["StringValue"] for name, value in job.message_attributes().items()}
    return job.to_body(), attributes, job.job_id


def _send_jobs(fleet: Fleet, names: list[str], seconds: float) -> dict[str, str]:
    """Send background jobs directly; returns MessageId to jobId."""
    messages = [_background_message(name, seconds) for name in names]
    ids = fleet.send("background", [m[0] for m in messages], [m[1] for m in messages])
    return dict(zip(ids, (m[2] for m in messages), strict=True))


def test_sigterm_finishes_running_jobs_releases_unstarted_ones_and_exits_zero() -> None:
    """Running jobs finish in the grace period, messages received after the signal are visible at once."""
    # A 60 s visibility: a released message visible within seconds cannot have waited the timeout out.
    with running_fleet("sigterm", settings={"VISIBILITY_TIMEOUT_SECONDS": "60"}, background_workers=0) as fleet:
        env = fleet.worker_env(WORKER_CONCURRENCY="4", RECEIVE_WAIT_SECONDS="10", SHUTDOWN_GRACE_SECONDS="20")
        running = _send_jobs(fleet, ["running-1", "running-2"], seconds=3)
        first = WorkerProcess.start("background_job", env)
        second: WorkerProcess | None = None
        try:
            wait_until(lambda: fleet.depth("background") == (0, 2), timeout=30, what="both jobs received")
            # Received is not started: a signal between the receive and the dispatch releases them unstarted
            # (as it must). A job's stream is created as the job starts, so wait for both streams.
            wait_until(
                lambda: all(fleet.job_stream_exists(job_id) for job_id in running.values()),
                timeout=30,
                what="both jobs started",
            )
            first.terminate()
            wait_until(lambda: first.events("worker.shutdown_requested"), timeout=10, what="the signal to land")
            # Sent after the signal: a poll already in flight may return them (they are released at once),
            # and no poll starts after the signal (they stay on the queue); either way they stay visible.
            unstarted = _send_jobs(fleet, ["unstarted-1", "unstarted-2"], seconds=0)
            exit_code = first.wait(timeout=60)
            depth_at_exit = fleet.depth("background")
            second = WorkerProcess.start("background_job", env)
            wait_until(
                lambda: len(second.events("job.succeeded")) == 2 if second else False,
                timeout=30,
                what="the released jobs on a new worker",
            )
            assert 0 == second.stop()
            wait_until(lambda: fleet.depth("background") == (0, 0), timeout=10, what="the queue to settle")
            dlq = fleet.drain("background_dlq")
        finally:
            first.kill()
            if second is not None:
                second.kill()

    released = first.events("message.released")
    first_runs = executions(first.lines())
    second_runs = executions(second.lines())
    record(
        "sigterm",
        messages_in=4,
        in_flight_at_signal=2,
        unstarted_at_signal=len(released),
        exit_code=exit_code,
        finished_in_grace=sum(first_runs.values()),
        released_visible_at_exit=depth_at_exit[0],
        completed_by_next_worker=sum(second_runs.values()),
        duplicates=sum(first_runs.values()) + sum(second_runs.values()) - 4,
    )
    assert 0 == exit_code
    assert {e["message_id"] for e in released} <= set(unstarted)
    assert {e["visible_in_seconds"] for e in released} <= {0}
    assert {job_id: 1 for job_id in running.values()} == dict(first_runs)
    assert (2, 0) == depth_at_exit
    assert {job_id: 1 for job_id in unstarted.values()} == dict(second_runs)
    assert [] == events_named(first.lines(), "worker.jobs_abandoned")
    assert [] == dlq


def test_job_longer_than_the_visibility_timeout_is_extended_and_never_delivered_twice() -> None:
    """The heartbeat keeps a 14 s job invisible on a 10 s queue: one attempt, one success."""
    with running_fleet("long") as fleet:
        [message_id] = fleet.send("trigger", [_trigger("diagnostic-sleep", seconds=LONG_SLEEP_SECONDS)])
        job_id = _job_id_of(fleet, message_id)
        stream = _stream_with(fleet, job_id, "job.succeeded")
        wait_until(lambda: fleet.depth("background") == (0, 0), timeout=30, what="the queue to settle")
        _shipped_executions(fleet, job_id)
        log = fleet.background_log()
        extensions = fleet.proxy_stats()["calls"].get("ChangeMessageVisibilityBatch", 0)
        dlq = fleet.drain("background_dlq")

    extended = events_named(log, "visibility.extended")
    record(
        "long_job",
        messages_in=1,
        job_seconds=LONG_SLEEP_SECONDS,
        visibility_timeout_seconds=10,
        visibility_extensions=len(extended),
        change_visibility_calls=extensions,
        attempts=sum(1 for e in stream if e["message"] == "job.started"),
        jobs_succeeded=executions(log)[job_id],
    )
    assert [1] == [e["attempt"] for e in stream if e["message"] == "job.started"]
    assert {job_id: 1} == dict(executions(log))
    assert len(extended) >= 2  # 14 s on a 10 s queue: extended at ~5 s and ~10 s
    assert [] == dlq
