"""Cancelling jobs on the real local fleet (issue 31), through the operator's own `fleet cancel`.

Effects are counted from the job ledger's items (``attempts`` counts claims: runs started) and the
job's own stream (``job.started``), never guessed from timing:

- a job cancelled before main_job has even consumed its trigger never runs, and neither does a
  redelivery of it;
- a long diagnostic job cancelled while running sees it on its context within one visibility timeout
  and stops; the ledger says who cancelled it and when it stopped;
- cancelling a job that already succeeded exits non-zero and changes nothing;
- ``fleet top``'s steady refresh, counted by the local proxy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from common.job_ids import job_id_for_message
from common.ledger.schema import JobStatus
from common.messages import BackgroundJob
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from fleet.cli.clients import Clients
from fleet.cli.deployment import Deployment
from fleet.cli.ledger import Ledger
from fleet.cli.top import SETTLED, TopSource
from tests.reliability.harness import EMULATOR_CREDENTIALS, PROJECT, QUICK_SETTINGS, REGION, Fleet, running_fleet
from tests.reliability.report import record
from tests.waiting import wait_until

ENVIRONMENT = "cancel"
VISIBILITY_SECONDS = int(QUICK_SETTINGS["VISIBILITY_TIMEOUT_SECONDS"])
TOP_OPERATIONS = (
    "GetQueueUrl",
    "GetQueueAttributes",
    "GetMetricData",
    "Query",
    "BatchGetItem",
    "DescribeServices",
)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with running_fleet(ENVIRONMENT) as running:
        yield running


def _dynamodb(fleet: Fleet) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=fleet.endpoint,
        region_name=REGION,
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _item(fleet: Fleet, job_id: str) -> dict[str, Any]:
    found = _dynamodb(fleet).get_item(
        TableName=fleet.names.job_ledger_table, Key={"jobId": {"S": job_id}}, ConsistentRead=True
    )
    return {key: next(iter(value.values())) for key, value in found.get("Item", {}).items()}


def _fleet_cli(fleet: Fleet, *argv: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """The operator's `fleet` command, as a process, against the local emulator."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **EMULATOR_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint or fleet.endpoint,
        "AWS_REGION": REGION,
        "FLEET_PROJECT_NAME": PROJECT,
        "FLEET_ENVIRONMENT": ENVIRONMENT,
    }
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli.cli", *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _trigger(name: str, **data: Any) -> str:
    return json.dumps({"trigger": name, "jobType": "diagnostic-sleep", "data": data})


def _cancelled_lines(fleet: Fleet, job_id: str) -> list[dict[str, Any]]:
    """The workers' stdout ``job.cancelled`` lines for this job (one per delivery deleted unrun)."""
    return [
        line for line in fleet.background_log() if line.get("event") == "job.cancelled" and line["job_id"] == job_id
    ]


def _first_in_state(fleet: Fleet, status: str) -> str | None:
    """A job in ``status`` queued in the last hour, as `fleet jobs --status` reads it (by-day + BatchGetItem)."""
    now = datetime.now(UTC)
    listing = Ledger(_dynamodb(fleet), fleet.names.job_ledger_table).queued_since(
        now - timedelta(hours=1), now=now, statuses=[status]
    )
    return listing.jobs[0].job_id if listing.jobs else None


def _peek(fleet: Fleet, queue: str) -> list[dict[str, Any]]:
    """The queue's visible messages, left visible (VisibilityTimeout 0), with their SentTimestamp."""
    return fleet.sqs.receive_message(
        QueueUrl=fleet.queues[queue], AttributeNames=["SentTimestamp"], VisibilityTimeout=0, WaitTimeSeconds=1
    ).get("Messages", [])


def _main_job_receive_failures(fleet: Fleet) -> int:
    return sum(1 for line in fleet.main_job_log() if line.get("event") == "receive.failed")


def _starts(fleet: Fleet, job_id: str) -> int:
    return sum(1 for event in fleet.job_stream(job_id) if event.get("message") == "job.started")


def test_a_job_cancelled_before_its_trigger_is_consumed_never_runs_nor_does_its_redelivery(fleet: Fleet) -> None:
    """Cancelled by job ID while its trigger waits: main_job enqueues it, the worker deletes it unrun, twice."""
    fleet.set_faults([{"operation": "ReceiveMessage", "kind": "unavailable"}])  # nothing is consumed meanwhile
    try:
        # A long poll that reached the emulator before the rule would still catch the trigger: wait until
        # main_job itself says its receives fail (its long poll in progress has ended by then).
        refused = _main_job_receive_failures(fleet)
        wait_until(lambda: _main_job_receive_failures(fleet) > refused, timeout=60, what="main_job's receives refused")
        [message_id] = fleet.send("trigger", [_trigger("cancel-early", seconds=1)])
        # A receive may come back empty although the message is there (SQS documents it for short polls;
        # the emulator's serialised receive can too): poll until it shows, with a deadline.
        [peeked] = wait_until(lambda: _peek(fleet, "trigger"), timeout=30, what="the trigger in its queue")
        job_id = job_id_for_message(message_id, int(peeked["Attributes"]["SentTimestamp"]))
        cancelled = _fleet_cli(fleet, "cancel", job_id, "--reason", "sent by mistake")
    finally:
        fleet.set_faults([])
    assert 0 == cancelled.returncode, cancelled.stderr
    wait_until(lambda: fleet.depth("trigger") == (0, 0), timeout=60, what="main_job consumed the trigger")
    wait_until(lambda: fleet.depth("background") == (0, 0), timeout=60, what="the background message deleted")
    wait_until(
        lambda: any(e.get("message") == "job.cancelled" for e in fleet.job_stream(job_id)),
        timeout=30,
        what="job.cancelled in the job's stream",
    )

    redelivery = BackgroundJob(job_id, "diagnostic-sleep", "redelivered", {"trigger": "x"}, "2026-12-04T00:00:00Z")
    fleet.sqs.send_message(
        QueueUrl=fleet.queues["background"],
        MessageBody=redelivery.to_body(),
        MessageAttributes=redelivery.message_attributes(),  # type: ignore[arg-type]
    )
    wait_until(lambda: fleet.depth("background") == (0, 0), timeout=60, what="the redelivery deleted")
    wait_until(lambda: len(_cancelled_lines(fleet, job_id)) == 2, timeout=30, what="job.cancelled on stdout twice")

    item = _item(fleet, job_id)
    assert JobStatus.CANCELLED == item["status"]
    assert "attempts" not in item  # no claim ever succeeded (and main_job writes no item): never started
    assert 0 == _starts(fleet, job_id)
    assert (0, 0) == fleet.depth("background_dlq")
    assert [False, False] == [line["ran"] for line in _cancelled_lines(fleet, job_id)]
    record("cancel_before_consumed", job_id=job_id, runs=0, deliveries_deleted_unrun=2)


def test_a_running_job_sees_the_cancel_within_one_visibility_timeout_and_stops(fleet: Fleet) -> None:
    """A 120 s diagnostic job cancelled while running: it stops cooperatively, recorded cancelled, message gone."""
    fleet.send("trigger", [_trigger("cancel-running", seconds=120)])
    job_id = wait_until(lambda: _first_in_state(fleet, "running"), timeout=60, what="the long job running")
    cancelled = _fleet_cli(fleet, "cancel", job_id, "--reason", "too long")
    assert 0 == cancelled.returncode, cancelled.stderr
    assert "(was running)" in cancelled.stdout
    wait_until(lambda: _item(fleet, job_id).get("finishedAt"), timeout=2 * VISIBILITY_SECONDS, what="the job stopped")
    wait_until(lambda: fleet.depth("background") == (0, 0), timeout=30, what="its message deleted")

    item = _item(fleet, job_id)
    asked = datetime.fromisoformat(item["cancelRequestedAt"].replace("Z", "+00:00"))
    stopped = datetime.fromisoformat(item["finishedAt"].replace("Z", "+00:00"))
    # The documented bound (the lease extension every half visibility timeout), not a performance figure.
    assert (stopped - asked).total_seconds() <= VISIBILITY_SECONDS
    assert (JobStatus.CANCELLED, "too long", "1") == (item["status"], item["cancelReason"], item["attempts"])
    assert float(item["progress"]) < 0.5
    assert 1 == _starts(fleet, job_id)
    record("cancel_running", job_id=job_id, seconds_to_stop=(stopped - asked).total_seconds())


def test_cancelling_a_succeeded_job_exits_non_zero_and_changes_nothing(fleet: Fleet) -> None:
    """A job that already succeeded cannot be cancelled: exit 1, the reason on stderr, the item unchanged."""
    fleet.send("trigger", [_trigger("cancel-too-late", seconds=0)])
    job_id = wait_until(lambda: _first_in_state(fleet, "succeeded"), timeout=60, what="the short job succeeded")
    before = _item(fleet, job_id)
    refused = _fleet_cli(fleet, "cancel", job_id)

    assert 1 == refused.returncode
    assert f"not cancelled  {job_id}  is already succeeded" in refused.stderr
    assert before == _item(fleet, job_id)


def test_a_steady_fleet_top_refresh_makes_fewer_than_ten_requests(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted by the local proxy: a refresh after the first costs 4 SQS + 1 Query + at most 1 BatchGetItem (no ECS)."""
    for name, value in {
        **EMULATOR_CREDENTIALS,
        "AWS_ENDPOINT_URL": fleet.worker_endpoint,
        "AWS_REGION": REGION,
        "FLEET_PROJECT_NAME": PROJECT,
        "FLEET_ENVIRONMENT": ENVIRONMENT,
    }.items():
        monkeypatch.setenv(name, value)
    clients = Clients.from_environment()
    source = TopSource(clients, Deployment.from_env(), Ledger(clients.dynamodb, fleet.names.job_ledger_table))
    source.refresh(datetime.now(UTC))

    def top_calls() -> int:
        calls = fleet.proxy_stats()["calls"]
        return sum(calls.get(operation, 0) for operation in TOP_OPERATIONS)

    counts = []
    for _ in range(4):
        before = top_calls()
        view = source.refresh(datetime.now(UTC))
        counts.append(top_calls() - before)
    # The BatchGetItem only while a listed job is not settled (the module's cancelled job is re-read).
    unsettled = any(job.status not in SETTLED for job in view.newest)
    assert [5 + unsettled] * 4 == counts
    # No ECS locally: the supervisor's own report of its worker processes, at no request.
    assert {MAIN_JOB_SERVICE: (1, 1), BACKGROUND_JOB_SERVICE: (1, 1)} == {
        service.name: (service.running, service.desired) for service in view.services
    }
    record("fleet_top_requests_per_refresh", counts=counts)
