"""End to end: the real local fleet (moto server + worker processes) driven by the real AWS CLI v2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.job_log.log import job_stream_name
from common.names import FleetNames
from common.sqs.quarantine import ATTR_REASON
from tests.aws_cli import aws_cli
from tests.fleet.local.started_fleet import started_fleet
from tests.waiting import wait_until

NAMES = FleetNames.for_deployment("message-driven-microservices", "e2e")
pytestmark = pytest.mark.e2e


@dataclass
class RunningFleet:
    process: subprocess.Popen[str]
    endpoint: str
    queues: dict[str, str]
    console: list[str] = field(default_factory=list)

    def aws(self, *args: str) -> str:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_PAGER": ""}
        result = subprocess.run(
            [aws_cli(), "--endpoint-url", self.endpoint, "--region", "us-east-1", "--output", "json", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert 0 == result.returncode, result.stderr
        return result.stdout

    def send_trigger(self, body: str) -> str:
        return str(
            json.loads(self.aws("sqs", "send-message", "--queue-url", self.queues["trigger"], "--message-body", body))[
                "MessageId"
            ]
        )

    def tail(self, group: str, *args: str) -> list[dict[str, Any]]:
        """``aws logs tail`` output, one JSON event per line after the timestamp and stream name."""
        events = []
        for line in self.aws("logs", "tail", group, "--since", "1h", "--format", "short", *args).splitlines():
            _, _, message = line.partition(" ")
            if message.startswith("{"):
                events.append(json.loads(message))
        return events

    def job_stream_of(self, message_id: str) -> str | None:
        for event in self.tail(NAMES.main_job_log_group):
            if event.get("event") == "trigger.received" and event.get("message_id") == message_id:
                return str(event["job_stream"])
        return None

    def job_events(self, stream: str) -> list[str]:
        return [e["message"] for e in self.tail(NAMES.background_job_log_group, "--log-stream-names", stream)]


@pytest.fixture(scope="module")
def fleet() -> Iterator[RunningFleet]:
    """``./deploy.sh local`` as a user runs it (via its Python entry point), on a free port."""
    env = {
        **os.environ,
        "FLEET_ENVIRONMENT": "e2e",
        "RECEIVE_WAIT_SECONDS": "1",
        "VISIBILITY_TIMEOUT_SECONDS": "10",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "MAX_RECEIVE_COUNT": "3",
        "RETRY_BASE_SECONDS": "1",
    }
    with started_fleet(env) as started:
        announcement = started.announcement
        yield RunningFleet(started.process, announcement["endpoint"], announcement["queues"], started.console)


def test_trigger_sent_with_the_aws_cli_runs_a_job_visible_with_aws_logs_tail(fleet: RunningFleet) -> None:
    """The README's walkthrough: send-message, then tail the job's own stream to job.succeeded."""
    message_id = fleet.send_trigger('{"trigger":"api_call","data":{"userId":"test123","action":"process_data"}}')

    stream = wait_until(lambda: fleet.job_stream_of(message_id), timeout=30, what="main-job's trigger.received line")
    events = wait_until(
        lambda: (e := fleet.job_events(stream)) and "job.succeeded" in e and e, timeout=30, what="job.succeeded"
    )

    assert re.fullmatch(r"job-streams/\d{4}-\d{2}-\d{2}/[0-9A-HJKMNP-TV-Z]{26}", stream)
    assert stream == job_stream_name(stream.rsplit("/", 1)[1])
    assert ["job.started", "job.step", "job.step", "job.succeeded"] == events


def test_malformed_trigger_goes_to_the_dlq_with_its_reason_while_valid_ones_complete(fleet: RunningFleet) -> None:
    """A broken trigger is quarantined with a precise reason; its neighbours still run."""
    good = [fleet.send_trigger(json.dumps({"trigger": f"neighbour-{i}"})) for i in range(2)]
    bad = fleet.send_trigger('{"trigger": 42}')

    def quarantined() -> list[dict[str, Any]]:
        output = fleet.aws(
            "sqs", "receive-message", "--queue-url", fleet.queues["trigger_dlq"],
            "--message-attribute-names", "All", "--visibility-timeout", "0", "--max-number-of-messages", "10",
        )  # fmt: skip
        return [m for m in json.loads(output or "{}").get("Messages", []) if m["Body"] == '{"trigger": 42}']

    [parked] = wait_until(quarantined, timeout=30, what="the quarantined trigger")
    streams = [wait_until(lambda m=m: fleet.job_stream_of(m), timeout=30, what="queued") for m in good]
    for stream in streams:
        wait_until(lambda s=stream: "job.succeeded" in fleet.job_events(s), timeout=30, what="neighbour succeeded")

    assert bad == parked["MessageAttributes"]["OriginalMessageId"]["StringValue"]
    assert "field 'trigger' must be a string, got number" == parked["MessageAttributes"][ATTR_REASON]["StringValue"]


def test_a_killed_worker_is_restarted_and_the_fleet_keeps_working(fleet: RunningFleet) -> None:
    """Like ECS, the local supervisor replaces a worker that dies, and triggers still complete."""
    started = re.compile(r"\[fleet\] started background-job-1 \(pid (\d+)\)")

    def pids() -> list[int]:
        return [int(m.group(1)) for line in list(fleet.console) if (m := started.search(line))]

    old = pids()[-1]
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: pids()[-1] != old, timeout=30, what="a replacement background worker")
    message_id = fleet.send_trigger('{"trigger":"after-restart"}')
    stream = wait_until(lambda: fleet.job_stream_of(message_id), timeout=30, what="queued")

    wait_until(lambda: "job.succeeded" in fleet.job_events(stream), timeout=30, what="job on the new worker")


def test_readme_prefix_and_json_filter_tails_return_exactly_the_job_streams_events(fleet: RunningFleet) -> None:
    """`aws logs tail --log-stream-name-prefix job-streams/<day>/` (+ a JSON filter) as the README shows it."""
    message_id = fleet.send_trigger('{"trigger":"readme-filters"}')
    stream = wait_until(lambda: fleet.job_stream_of(message_id), timeout=30, what="queued")
    wait_until(lambda: "job.succeeded" in fleet.job_events(stream), timeout=30, what="job.succeeded")
    day_prefix = stream.rsplit("/", 1)[0] + "/"

    def detailed(*args: str) -> list[tuple[str, str]]:
        lines = fleet.aws("logs", "tail", NAMES.background_job_log_group, "--since", "1h", *args).splitlines()
        return [(parts[1], json.loads(parts[2])["message"]) for line in lines if len(parts := line.split(" ", 2)) == 3]

    by_prefix = detailed("--log-stream-name-prefix", day_prefix)
    succeeded = detailed("--log-stream-name-prefix", day_prefix, "--filter-pattern", '{ $.message = "job.succeeded" }')

    assert by_prefix
    assert all(name.startswith(day_prefix) for name, _ in by_prefix)
    assert (stream, "job.succeeded") in succeeded
    assert {"job.succeeded"} == {event for _, event in succeeded}
    assert len({name for name, _ in by_prefix}) == len(succeeded)


def test_readme_negated_term_filter_joined_with_equals_excludes_the_term(fleet: RunningFleet) -> None:
    """README: `--filter-pattern='-job.step'` (a leading '-' needs '=' in the AWS CLI) drops job.step events."""
    message_id = fleet.send_trigger('{"trigger":"readme-negated"}')
    stream = wait_until(lambda: fleet.job_stream_of(message_id), timeout=30, what="queued")
    wait_until(lambda: "job.succeeded" in fleet.job_events(stream), timeout=30, what="job.succeeded")

    events = [
        e["message"]
        for e in fleet.tail(NAMES.background_job_log_group, "--log-stream-names", stream, "--filter-pattern=-job.step")
    ]

    assert ["job.started", "job.succeeded"] == events
