"""The ledger's claims on the real local fleet (issue 32): a side write never decides a claim, a busy copy
never reaches the DLQ while its job runs, a throttled `succeeded` is not lost, validation comes first.

Runs are counted from diagnostic-sleep's effect file (one line per finished run), never from log lines.
Background messages are sent straight to the background queue, as main_job would send them, so a test
controls which job IDs (and which copies) share a queue.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.job_ids import job_id_for_message
from common.ledger.schema import JobStatus
from common.messages import BackgroundJob
from tests.reliability.harness import Fleet, effects, events_named, running_fleet
from tests.waiting import wait_until

SLEEP = "diagnostic-sleep"


@pytest.fixture
def effects_file(tmp_path: Path) -> Path:
    return tmp_path / "effects"


def _job(tag: str, *, seconds: float = 0.2, job_type: str = SLEEP, job_id: str = "") -> BackgroundJob:
    return BackgroundJob(
        job_id or job_id_for_message(f"{tag}-{time.time_ns()}", int(time.time() * 1000)),
        job_type,
        f"corr-{tag}",
        {"trigger": "claims", "jobType": job_type, "data": {"seconds": seconds}},
        "2026-12-04T17:00:00Z",
    )


def _send(fleet: Fleet, jobs: list[BackgroundJob]) -> None:
    attributes = [{name: value["StringValue"] for name, value in job.message_attributes().items()} for job in jobs]
    fleet.send("background", [job.to_body() for job in jobs], attributes)


def _status(fleet: Fleet, job_id: str) -> str:
    return str(fleet.ledger_items().get(job_id, {}).get("status", ""))


def _settled(fleet: Fleet) -> bool:
    return fleet.depth("background") == (0, 0)


@pytest.fixture
def fleet_with_effects(effects_file: Path, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    settings = {"DIAGNOSTIC_EFFECTS_FILE": str(effects_file), **getattr(request, "param", {})}
    environment = "claims-" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-16:]
    with running_fleet(environment, settings=settings) as fleet:
        yield fleet


def _succeeded_job(fleet: Fleet, tag: str) -> BackgroundJob:
    """A job that ran and succeeded, waited for in the ledger."""
    done = _job(tag)
    _send(fleet, [done])
    wait_until(lambda: _status(fleet, done.job_id) == JobStatus.SUCCEEDED, timeout=60, what="the first job succeeded")
    return done


@pytest.mark.parametrize(
    "fleet_with_effects",
    [{"JOB_LEDGER_UNAVAILABLE": "retry"}, {"JOB_LEDGER_UNAVAILABLE": "run"}],
    indirect=True,
    ids=["retry", "run"],
)
def test_a_failing_duplicate_counter_never_stops_or_repeats_the_new_jobs_of_its_batch(fleet_with_effects, effects_file):
    """Every duplicatesSkipped write fails: the nine new jobs sent beside a copy of a succeeded job run once each."""
    fleet = fleet_with_effects
    done = _succeeded_job(fleet, "done")
    fleet.set_faults([{"operation": "*", "kind": "unavailable", "matching": "duplicatesSkipped"}])
    new = [_job(f"new-{n}") for n in range(9)]
    _send(fleet, [done, *new])
    wait_until(lambda: _settled(fleet), timeout=120, what="the batch settled")
    counter_faults = sum(
        count for name, count in fleet.proxy_stats()["faults"].items() if name.endswith(":unavailable")
    )
    fleet.set_faults([])

    assert {job.job_id: 1 for job in [done, *new]} == dict(effects(effects_file))
    assert 0 < counter_faults
    assert (0, 0) == fleet.depth("background_dlq")
    assert [JobStatus.SUCCEEDED] * 9 == [_status(fleet, job.job_id) for job in new]


def test_two_copies_of_a_job_longer_than_five_backoff_rounds_run_once_and_leave_the_dlq_empty(
    fleet_with_effects, effects_file
):
    """The copy backs off to the holder's lease end and, on its last allowed receive, is deleted, not dead-lettered."""
    fleet = fleet_with_effects
    long_job = _job("long", seconds=45)
    _send(fleet, [long_job])
    wait_until(lambda: fleet.job_stream_exists(long_job.job_id), timeout=30, what="the long job started")
    _send(fleet, [long_job])
    wait_until(lambda: _settled(fleet), timeout=150, interval=1.0, what="both copies settled")

    assert {long_job.job_id: 1} == dict(effects(effects_file))
    assert (0, 0) == fleet.depth("background_dlq")
    assert JobStatus.SUCCEEDED == _status(fleet, long_job.job_id)


@pytest.mark.parametrize("kind", ["throttle", "conflict"])
def test_a_throttled_succeeded_is_retried_not_lost_so_a_later_copy_does_not_run(effects_file, kind):
    """Six refusals of the `succeeded` write (botocore tries four times): retried with backoff, so a copy is skipped."""
    with running_fleet(f"claims-throttled-{kind}", settings={"DIAGNOSTIC_EFFECTS_FILE": str(effects_file)}) as fleet:
        # Only the outcome write of a success sets finishedAt (a claim's condition also names "succeeded").
        fleet.set_faults([{"operation": "*", "kind": kind, "matching": "finishedAt", "times": 6}])
        job = _job("throttled")
        _send(fleet, [job])
        wait_until(lambda: _settled(fleet), timeout=60, what="the job settled")
        fleet.set_faults([])
        _send(fleet, [job])
        wait_until(lambda: _settled(fleet), timeout=60, what="the copy settled")
        skipped = wait_until(
            lambda: events_named(fleet.background_log(), "job.duplicate_skipped", job_id=job.job_id),
            timeout=30,
            what="the copy's skip line shipped",
        )

    assert {job.job_id: 1} == dict(effects(effects_file))
    assert 1 == len(skipped)


def test_an_unknown_job_type_carrying_a_succeeded_jobs_id_is_quarantined_with_its_reason(
    fleet_with_effects, effects_file
):
    """Validation before the duplicate check: the impostor reaches the DLQ with its reason, the job stays succeeded."""
    fleet = fleet_with_effects
    done = _succeeded_job(fleet, "done")
    impostor = _job("impostor", job_type="no-such-job", job_id=done.job_id)
    _send(fleet, [impostor])
    wait_until(lambda: fleet.depth("background_dlq")[0] == 1, timeout=60, what="the impostor quarantined")

    [parked] = fleet.drain("background_dlq")
    assert json.loads(parked["Body"])["jobType"] == "no-such-job"
    assert "unknown jobType 'no-such-job'" in parked["MessageAttributes"]["QuarantineReason"]["StringValue"]
    assert JobStatus.SUCCEEDED == _status(fleet, done.job_id)
    assert {done.job_id: 1} == dict(effects(effects_file))


def test_a_retrying_outcome_that_could_not_be_written_does_not_cost_the_job_its_runs(fleet_with_effects):
    """The first `retrying` write fails: the redelivery takes its own claim over (never busy); every run happens."""
    fleet = fleet_with_effects
    # One full botocore cycle (4 attempts) of 503s on the first outcome write that carries lastError.
    fleet.set_faults([{"operation": "*", "kind": "unavailable", "matching": "lastError", "times": 4}])
    failing = _job("failing", job_type="diagnostic-fail")
    _send(fleet, [failing])
    wait_until(lambda: fleet.depth("background_dlq")[0] == 1, timeout=120, interval=1.0, what="the job given up")
    wait_until(
        lambda: events_named(fleet.background_log(), "message.dead_letter_handoff", job_id=failing.job_id),
        timeout=30,
        what="the hand-off line shipped",
    )
    log = fleet.background_log()
    [parked] = fleet.drain("background_dlq")

    assert events_named(log, "ledger.write_failed")
    assert [] == events_named(log, "job.claim_busy", job_id=failing.job_id)
    assert 5 == int(fleet.ledger_items()[failing.job_id]["attempts"])  # MAX_RECEIVE_COUNT=5: five runs, none lost
    assert parked["MessageAttributes"]["QuarantineReason"]["StringValue"].startswith("attempts exhausted: ")


def test_a_worker_killed_after_a_late_receive_and_claim_leaves_nothing_to_refuse_the_redelivery(effects_file):
    """SQS's answer reaches the worker 4 s after the visibility started; it claims, dies: the redelivery runs."""
    settings = {"DIAGNOSTIC_EFFECTS_FILE": str(effects_file)}
    # Two workers: the other one is polling when the dead worker's visibility ends, not restarting.
    with running_fleet("claims-crash", settings=settings, background_workers=2) as fleet:
        slow = {"operation": "ReceiveMessage", "kind": "slow_answer", "seconds": 4, "matching": "background-jobs"}
        fleet.set_faults([slow])
        job = _job("crash", seconds=3)
        _send(fleet, [job])
        wait_until(lambda: _status(fleet, job.job_id) == JobStatus.RUNNING, timeout=60, interval=0.05, what="claim")
        victim = int(str(fleet.ledger_items()[job.job_id]["workerId"]).rsplit("/", 1)[1])
        os.kill(victim, signal.SIGKILL)
        fleet.set_faults([])
        wait_until(lambda: _status(fleet, job.job_id) == JobStatus.SUCCEEDED, timeout=90, what="the redelivery's run")
        log = fleet.background_log()
        attempts = int(fleet.ledger_items()[job.job_id]["attempts"])

    assert [] == events_named(log, "job.claim_busy", job_id=job.job_id)
    assert {job.job_id: 1} == dict(effects(effects_file))
    assert 2 == attempts
