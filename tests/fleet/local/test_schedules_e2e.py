"""End to end: the real local fleet plays EventBridge Scheduler; each tick is one job, run once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from common.job_ids import job_id_for_tick, job_timestamp
from common.names import FleetNames
from tests.fleet.local.started_fleet import started_fleet
from tests.waiting import wait_until

NAMES = FleetNames.for_deployment("message-driven-microservices", "sched")
FIRED = re.compile(r"scheduler: heartbeat fired for (\S+Z)")
pytestmark = pytest.mark.e2e


@dataclass
class ScheduledFleet:
    process: subprocess.Popen[str]
    endpoint: str
    queues: dict[str, str]
    console: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "FLEET_ENVIRONMENT": "sched",
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the emulator's dummy credentials
        )

    def fleet_cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "fleet.cli.cli", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        assert 0 == result.returncode, result.stderr
        return result.stdout

    def ledger_status(self, job_id: str) -> dict[str, Any] | None:
        item = self.client("dynamodb").get_item(TableName=NAMES.job_ledger_table, Key={"jobId": {"S": job_id}})
        return item.get("Item")

    def succeeded(self, job_id: str) -> dict[str, Any] | None:
        item = self.ledger_status(job_id)
        return item if item and item["status"]["S"] == "succeeded" else None


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScheduledFleet]:
    """``./deploy.sh local`` with one enabled rate(1 minute) schedule declared."""
    declaration = Path(tmp_path_factory.mktemp("schedules")) / "schedules.auto.tfvars.json"
    declaration.write_text(
        json.dumps({"schedules": {"heartbeat": {"expression": "rate(1 minute)", "trigger": {"trigger": "heartbeat"}}}}),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "FLEET_ENVIRONMENT": "sched",
        "FLEET_SCHEDULES_FILE": str(declaration),
        "RECEIVE_WAIT_SECONDS": "1",
        "VISIBILITY_TIMEOUT_SECONDS": "10",
        "SHUTDOWN_GRACE_SECONDS": "10",
    }
    with started_fleet(env) as started:
        announcement = started.announcement
        yield ScheduledFleet(started.process, announcement["endpoint"], announcement["queues"], started.console)


def test_start_up_prints_each_schedules_next_fire_time(fleet: ScheduledFleet) -> None:
    """The banner names the schedule, its state and its next minute."""
    [line] = [line for line in fleet.console if "schedule heartbeat:" in line]

    assert re.search(r"schedule heartbeat: ENABLED, next fire \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00Z", line)


def test_rate_one_minute_fires_twice_and_each_tick_is_one_succeeded_job_of_its_minute(fleet: ScheduledFleet) -> None:
    """Within 150 s: two ticks, each a succeeded ledger item whose job ID decodes to the scheduled minute."""

    def ticks() -> list[datetime]:
        return [
            datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            for line in list(fleet.console)
            if (m := FIRED.search(line))
        ]

    fired = wait_until(
        lambda: len(ticks()) >= 2 and ticks(), timeout=150, interval=0.5, what="two rate(1 minute) ticks"
    )
    job_ids = [job_id_for_tick("heartbeat", tick) for tick in fired[:2]]
    items = [
        wait_until(lambda j=j: fleet.succeeded(j), timeout=60, interval=0.5, what=f"{j} succeeded") for j in job_ids
    ]

    assert [0, 0] == [tick.second for tick in fired[:2]]
    assert fired[:2] == [job_timestamp(job_id) for job_id in job_ids]
    assert ["1", "1"] == [item["attempts"]["N"] for item in items]


def test_the_same_tick_delivered_twice_runs_once(fleet: ScheduledFleet) -> None:
    """Two messages for one tick (as Scheduler may send): one job, run once; the second is skipped."""
    tick = {"trigger": "nightly", "schedule": {"name": "nightly-report", "scheduledTime": "2026-01-01T02:00:00Z"}}
    job_id = job_id_for_tick("nightly-report", datetime(2026, 1, 1, 2, 0, tzinfo=UTC))
    sqs = fleet.client("sqs")
    sqs.send_message(QueueUrl=fleet.queues["trigger"], MessageBody=json.dumps(tick))
    wait_until(lambda: fleet.succeeded(job_id), timeout=60, interval=0.5, what="first delivery succeeded")

    sqs.send_message(QueueUrl=fleet.queues["trigger"], MessageBody=json.dumps(tick))
    item = wait_until(
        lambda: (i := fleet.ledger_status(job_id)) and "duplicatesSkipped" in i and i,
        timeout=60,
        interval=0.5,
        what="the second delivery skipped",
    )

    assert ("succeeded", "1", "1") == (item["status"]["S"], item["attempts"]["N"], item["duplicatesSkipped"]["N"])


def test_send_in_twenty_seconds_is_listed_until_it_runs_and_never_runs_early(fleet: ScheduledFleet) -> None:
    """fleet send --in 20s: shown as delayed by fleet schedules, then run, not before its time."""
    sent_at = time.time()
    out = fleet.fleet_cli("send", "--trigger", "in-twenty", "--in", "20s")
    listed = fleet.fleet_cli("schedules")
    message_id = out.split()[1]

    def queued_at() -> float | None:
        for line in list(fleet.console):
            if '"trigger.received"' in line and message_id in line:
                return time.time()
        return None

    ran = wait_until(queued_at, timeout=60, what="the delayed trigger queued its job")

    assert "1 trigger(s) delayed in the trigger queue" in listed
    assert ran - sent_at >= 20
