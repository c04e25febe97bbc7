"""Scenario 8: the job ledger on the real local fleet. A worker killed, or frozen past its visibility
timeout, after its jobs succeeded but before their deletes: every job ends with exactly one `succeeded`
ledger item and ran once.

"Ran once" is counted from the ledger's `attempts` (claims: runs started), which the worker writes
before a job runs, not from log lines; redeliveries show as `duplicatesSkipped`.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import boto3

from common.ledger.schema import JobStatus
from tests.reliability.harness import EMULATOR_CREDENTIALS, REGION, Fleet, WorkerProcess, running_fleet
from tests.waiting import wait_until

JOBS = 5


def _ledger_items(fleet: Fleet) -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", endpoint_url=fleet.endpoint, region_name=REGION, **_credentials())
    items = dynamodb.scan(TableName=fleet.names.job_ledger_table, ConsistentRead=True)["Items"]
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def _succeeded(fleet: Fleet) -> int:
    return sum(1 for item in _ledger_items(fleet) if item.get("status") == JobStatus.SUCCEEDED)


def _send_jobs(fleet: Fleet) -> None:
    body = {"trigger": "ledger", "triggerBackgroundJob": True, "jobType": "main-job-processing", "data": {}}
    fleet.send("trigger", [json.dumps({**body, "data": {"n": number}}) for number in range(JOBS)])


def _settled(fleet: Fleet) -> bool:
    return fleet.depth("background") == (0, 0) and fleet.depth("trigger") == (0, 0)


def _succeed_with_deletes_failing(fleet: Fleet) -> None:
    """Every job succeeds while no DeleteMessageBatch gets through: the window a crash must not reopen."""
    fleet.set_faults([{"operation": "DeleteMessageBatch", "kind": "unavailable"}])
    _send_jobs(fleet)
    wait_until(lambda: _succeeded(fleet) == JOBS, timeout=90, what="every job succeeded (deletes failing)")


def _assert_each_job_ran_once(fleet: Fleet, *, skipped_at_least: int) -> None:
    items = _ledger_items(fleet)
    assert [JobStatus.SUCCEEDED] * JOBS == [item["status"] for item in items]
    assert ["1"] * JOBS == [item["attempts"] for item in items]  # one claim each: one run each
    assert sum(int(item.get("duplicatesSkipped", "0")) for item in items) >= skipped_at_least
    assert (0, 0) == fleet.depth("background_dlq")
    assert (0, 0) == fleet.depth("trigger_dlq")


def test_a_worker_killed_after_success_before_its_deletes_runs_nothing_twice() -> None:
    """kill -9 with every job succeeded and no delete through: the restarted worker skips them all."""
    with running_fleet("ledger-kill") as fleet:
        _succeed_with_deletes_failing(fleet)
        [victim] = fleet.pids("background-job-1")
        os.kill(victim, signal.SIGKILL)
        fleet.set_faults([])
        wait_until(lambda: len(fleet.pids("background-job-1")) == 2, timeout=30, what="the supervisor's restart")
        wait_until(lambda: _settled(fleet), timeout=120, what="every redelivery skipped and deleted")
        _assert_each_job_ran_once(fleet, skipped_at_least=JOBS)


def test_a_worker_frozen_past_its_visibility_timeout_loses_no_job_and_runs_none_twice() -> None:
    """SIGSTOP after success before the deletes: another worker gets the redeliveries and skips them."""
    with running_fleet("ledger-freeze") as fleet:
        _succeed_with_deletes_failing(fleet)
        [frozen] = fleet.pids("background-job-1")
        os.kill(frozen, signal.SIGSTOP)
        fleet.set_faults([])
        # Past the 10 s visibility timeout the frozen worker's messages come back to a second worker.
        other = WorkerProcess.start("background_job", fleet.worker_env(JOB_LEDGER_TABLE=fleet.names.job_ledger_table))
        try:
            wait_until(lambda: _settled(fleet), timeout=120, what="the redeliveries skipped by the other worker")
        finally:
            os.kill(frozen, signal.SIGCONT)
            other.stop()
        _assert_each_job_ran_once(fleet, skipped_at_least=JOBS)
