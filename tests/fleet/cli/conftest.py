"""A fleet on moto's in-process AWS: the four queues with their redrive policies, and both log groups."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.job_ids import job_id_for_message, job_timestamp
from common.job_log.log import job_stream_name
from common.names import FleetNames
from fleet.cli import cli

REGION = "us-east-1"
PROJECT = "message-driven-microservices"
ENVIRONMENT = "test"


@dataclass
class Result:
    """Exit status and both output streams of one ``fleet`` invocation."""

    code: int
    out: str
    err: str


@dataclass
class Fleet:
    sqs: Any
    logs: Any
    names: FleetNames
    urls: dict[str, str]
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[], None] | None = None

    def run(self, *argv: str) -> Result:
        """Run ``fleet ARGV`` in process; sleeping calls ``on_sleep`` instead of waiting."""
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out=out, err=err, sleep=self._sleep)
        return Result(code, out.getvalue(), err.getvalue())

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep()

    def job_event(self, job_id: str, message: str, at: datetime, **fields: Any) -> None:
        """Write one event to the job's own stream, as common.job_log.log does."""
        stream = job_stream_name(job_id)
        group = self.names.background_job_log_group
        if not self.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        record = {"message": message, "jobId": job_id, "level": "info", "timestamp": _iso(at), **fields}
        self.logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": _millis(at), "message": json.dumps(record)}],
        )

    def main_job_event(self, job_id: str, event: str, at: datetime, **fields: Any) -> None:
        """Write one main-job stdout line, as the awslogs driver ships it."""
        group = self.names.main_job_log_group
        stream = "main-job/main-job/task-1"
        if not self.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        record = {
            "event": event,
            "job_id": job_id,
            "level": "info",
            "timestamp": _iso(at),
            "service": "main-job",
        }
        self.logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": _millis(at), "message": json.dumps({**record, **fields})}],
        )

    def dlq_messages(self, alias: str) -> list[dict[str, Any]]:
        """Everything in a queue, received once and deleted (the test's own view of it)."""
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.urls[alias],
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not batch:
                return found
            found += batch

    def depth(self, alias: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.urls[alias],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def new_job_id(index: int, at: datetime) -> str:
    return job_id_for_message(f"message-{index}", _millis(at))


def job_start(job_id: str) -> datetime:
    return job_timestamp(job_id)


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Fleet]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "FLEET_PROJECT_NAME": PROJECT,
        "FLEET_ENVIRONMENT": ENVIRONMENT,
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        logs = boto3.client("logs", region_name=REGION)
        names = FleetNames.for_deployment(PROJECT, ENVIRONMENT)
        urls: dict[str, str] = {}
        for alias, source, dlq in (
            ("triggers", names.trigger_queue, names.trigger_dlq),
            ("background", names.background_queue, names.background_dlq),
        ):
            urls[f"{alias}-dlq"] = sqs.create_queue(QueueName=dlq)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=urls[f"{alias}-dlq"], AttributeNames=["QueueArn"])["Attributes"]
            policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 1})
            urls[alias] = sqs.create_queue(QueueName=source, Attributes={"RedrivePolicy": policy})["QueueUrl"]
        logs.create_log_group(logGroupName=names.main_job_log_group)
        logs.create_log_group(logGroupName=names.background_job_log_group)
        yield Fleet(sqs=sqs, logs=logs, names=names, urls=urls)


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
