"""Runaway jobs on the real local fleet: a job past its time limit is failed from outside its thread.

Each scenario runs the fleet's own processes (``python -m fleet.local.fleet``, or a worker started with
exactly the container entry point) with ``JOB_TIMEOUT_SECONDS`` short, and a diagnostic-sleep job that
blocks forever (``data.forever``: ``Event().wait()`` with no timeout) or overruns its limit. Runs are
counted from the job ledger's items and the workers' own events, never guessed from timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from common.ledger.schema import JobStatus
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

LIMIT = {"JOB_TIMEOUT_SECONDS": "2"}
MAX_RECEIVE_COUNT = 3


def _trigger(trigger: str, job_type: str = "main-job-processing", **data: Any) -> str:
    return json.dumps({"trigger": trigger, "jobType": job_type, "data": data})


def _hang() -> str:
    return _trigger("runaway", "diagnostic-sleep", forever=True)


def test_a_job_that_blocks_forever_is_retried_then_dead_lettered_while_its_worker_runs_the_rest() -> None:
    """Failed at its limit on every attempt, then handed to the DLQ as timed out; 20 other jobs succeed meanwhile."""
    settings = {**LIMIT, "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT), "RETRY_BASE_SECONDS": "1"}
    with running_fleet("runaway", settings=settings) as fleet:
        [hung_trigger] = fleet.send("trigger", [_hang()])
        others = fleet.send("trigger", [_trigger(f"other-{n}") for n in range(20)])
        wait_until(lambda: fleet.depth("background_dlq")[0] == 1, timeout=120, interval=0.5, what="the DLQ")
        job_ids = job_ids_by_message(fleet.main_job_log())
        [hung_job] = job_ids[hung_trigger]
        other_jobs = {job for message in others for job in job_ids[message]}
        wait_until(
            lambda: len([j for j, item in fleet.ledger_items().items() if item["status"] == JobStatus.SUCCEEDED]) == 20,
            timeout=60,
            what="the other jobs to succeed",
        )
        wait_until(
            lambda: events_named(fleet.background_log(), "message.dead_letter_handoff"),
            timeout=15,
            what="the hand-off line shipped",
        )
        log = fleet.background_log()
        ledger = fleet.ledger_items()
        [parked] = fleet.drain("background_dlq")
        # A hung job's events ship on the job log's tick (every 5 s), not at an end it never reaches.
        stream = wait_until(
            lambda: _timeouts_shipped(fleet, hung_job, 3),
            timeout=30,
            what="the last job.timed_out in the job's stream",
        )

    timeouts = events_named(log, "job.timed_out", job_id=hung_job)
    [handoff] = events_named(log, "message.dead_letter_handoff")
    record("runaway_job", attempts=len(timeouts), others_succeeded=20, background_dlq=1)
    assert [1, 2, 3] == [line["attempt"] for line in timeouts]
    assert [True, True, False] == [line["will_retry"] for line in timeouts]
    assert "timed out after 2 s" == handoff["reason"]
    assert hung_job == json.loads(parked["Body"])["jobId"]
    assert (JobStatus.DEAD, "timed out after 2 s") == (
        ledger[hung_job]["status"],
        ledger[hung_job]["lastError"],
    )
    assert [1, 2, 3] == [e["attempt"] for e in stream if e["message"] == "job.timed_out"]
    assert {job: 1 for job in other_jobs} == {job: executions(log)[job] for job in other_jobs}
    assert 0 == executions(log)[hung_job]
    assert [] == [code for label, code in fleet.exits() if label.startswith("background")]


def test_a_worker_whose_slots_all_hang_exits_and_is_replaced_without_losing_or_repeating_a_job() -> None:
    """Two slots, two hung jobs: the worker exits 70, the supervisor restarts it, and later jobs run once each."""
    settings = {**LIMIT, "WORKER_CONCURRENCY": "2", "MAX_RECEIVE_COUNT": "2", "RETRY_BASE_SECONDS": "1"}
    with running_fleet("all-slots-hang", settings=settings) as fleet:
        hung = fleet.send("trigger", [_hang(), _hang()])
        wait_until(
            lambda: ("background-job-1", 70) in fleet.exits(), timeout=60, interval=0.5, what="the worker to exit 70"
        )
        wait_until(lambda: len(fleet.pids("background-job-1")) >= 2, timeout=60, what="the supervisor's restart")
        late = fleet.send("trigger", [_trigger(f"after-{n}", "diagnostic-sleep", seconds=0.1) for n in range(10)])
        wait_until(lambda: fleet.depth("background_dlq")[0] == 2, timeout=120, interval=0.5, what="both in the DLQ")
        job_ids = job_ids_by_message(fleet.main_job_log())
        later_jobs = {job for message in late for job in job_ids[message]}
        wait_until(
            lambda: all(fleet.ledger_items().get(job, {}).get("status") == JobStatus.SUCCEEDED for job in later_jobs),
            timeout=60,
            what="the later jobs to succeed",
        )
        # The ledger records a success as the job returns; the job's stdout line reaches the log group
        # with the fleet's next shipment, so the runs are counted once every later job's line is there.
        log = wait_until(
            lambda: _log_once_all_ran(fleet, later_jobs), timeout=30, interval=0.5, what="their lines shipped"
        )
        hung_jobs = {job for message in hung for job in job_ids[message]}

    slots_lost = events_named(log, "worker.slots_lost")
    record("all_slots_hang", worker_exits=len(slots_lost), background_dlq=2, later_jobs=len(later_jobs))
    assert slots_lost
    assert {job: 1 for job in later_jobs} == {job: executions(log)[job] for job in later_jobs}
    assert {job: 0 for job in hung_jobs} == {job: executions(log)[job] for job in hung_jobs}


def _log_once_all_ran(fleet: Fleet, jobs: set[str]) -> list[dict[str, Any]] | None:
    """The background log, once it shows a ``job.succeeded`` line for each of ``jobs``."""
    log = fleet.background_log()
    runs = executions(log)
    return log if all(runs[job] for job in jobs) else None


def test_the_health_check_fails_while_a_slot_is_held_past_its_deadline() -> None:
    """python -m common.health, as ECS runs it, exits 1 naming the stuck slot; the worker still stops cleanly."""
    with running_fleet("hung-health", background_workers=0) as fleet:
        env = fleet.worker_env(**LIMIT, HUNG_SLOT_UNHEALTHY_SECONDS="1", MIN_LIVE_SLOTS_SHARE="0")
        worker = WorkerProcess.start("background_job", env)
        try:
            wait_until(lambda: _health(env).returncode == 0, timeout=30, what="a healthy worker")
            fleet.send("trigger", [_hang()])
            unhealthy = wait_until(
                lambda: (check := _health(env)).returncode == 1 and "past its deadline" in check.stderr and check,
                timeout=60,
                what="the health check to fail",
            )
            exit_code = worker.stop(timeout=60)
        finally:
            worker.kill()

    assert "slot(s) lost" in unhealthy.stderr
    assert 0 == exit_code
    assert worker.events("job.timed_out")


def test_a_job_that_watches_its_time_left_stops_early_and_succeeds() -> None:
    """A 30 s job under a 3 s limit that checks job.time_left() returns in time: one run, succeeded."""
    with running_fleet("time-left", settings={"JOB_TIMEOUT_SECONDS": "3"}) as fleet:
        [trigger] = fleet.send("trigger", [_trigger("patient", "diagnostic-sleep", seconds=30, stopEarly=True)])
        wait_until(lambda: job_ids_by_message(fleet.main_job_log()).get(trigger), timeout=30, what="its job ID")
        [job_id] = job_ids_by_message(fleet.main_job_log())[trigger]
        wait_until(
            lambda: fleet.ledger_items().get(job_id, {}).get("status") == JobStatus.SUCCEEDED,
            timeout=60,
            what="the job to succeed",
        )
        stream = fleet.job_stream(job_id)

    steps = [e.get("step") for e in stream if e["message"] == "job.step"]
    assert ["sleep", "stopped_early"] == steps
    assert [] == [e for e in stream if e["message"] == "job.timed_out"]


def _timeouts_shipped(fleet: Fleet, job_id: str, count: int) -> list[dict[str, Any]] | None:
    """The job's stream once it holds ``count`` job.timed_out events."""
    stream = fleet.job_stream(job_id)
    return stream if len([e for e in stream if e["message"] == "job.timed_out"]) == count else None


def _health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "common.health"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
