"""Tests for fleet/cli/status.py against moto's in-process AWS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from fleet.cli import status

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield {
            "sqs": boto3.client("sqs", region_name=REGION),
            "cloudwatch": boto3.client("cloudwatch", region_name=REGION),
            "ecs": boto3.client("ecs", region_name=REGION),
        }


def _ecs_services(ecs: Any, *desired: tuple[str, int]) -> None:
    ecs.create_cluster(clusterName="fleet")
    ecs.register_task_definition(
        family="worker", containerDefinitions=[{"name": "worker", "image": "worker:1", "memory": 512}]
    )
    for name, count in desired:
        ecs.create_service(cluster="fleet", serviceName=name, taskDefinition="worker", desiredCount=count)


def test_queue_status_counts_visible_in_flight_and_delayed_messages(aws):
    """Visible, in-flight and delayed messages are each counted in their own column."""
    sqs = aws["sqs"]
    url = sqs.create_queue(QueueName="fleet-prod-main-job-triggers")["QueueUrl"]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=300)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)

    result = status.queue_status(sqs, aws["cloudwatch"], url, now=datetime.now(UTC))

    assert status.QueueStatus("fleet-prod-main-job-triggers", 2, 1, 1, None) == result


def test_oldest_message_age_is_the_latest_cloudwatch_datapoint(aws):
    """The age shown is the most recent ApproximateAgeOfOldestMessage datapoint."""
    cloudwatch = aws["cloudwatch"]
    now = datetime.now(UTC)
    for minutes_ago, age in ((6, 30.0), (2, 95.0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/SQS",
            MetricData=[
                {
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": "q"}],
                    "Timestamp": now - timedelta(minutes=minutes_ago),
                    "Value": age,
                    "Unit": "Seconds",
                }
            ],
        )

    assert status.oldest_message_age(cloudwatch, "q", now=now) == 95.0


def test_oldest_message_age_is_unknown_without_datapoints(aws):
    """A queue CloudWatch knows nothing about has no age rather than a made-up zero."""
    assert status.oldest_message_age(aws["cloudwatch"], "quiet", now=datetime.now(UTC)) is None


def test_service_statuses_keep_the_given_order(aws):
    """Services come back in the order asked for, with running and desired counts."""
    _ecs_services(aws["ecs"], ("main-job", 2), ("background-job", 0))

    result = status.service_statuses(aws["ecs"], "fleet", ["background-job", "main-job"])

    assert [service.name for service in result] == ["background-job", "main-job"]
    assert [service.desired for service in result] == [0, 2]
    assert all(service.running >= 0 for service in result)


def test_a_missing_service_is_named(aws):
    """Asking for a service that does not exist raises an error naming it."""
    _ecs_services(aws["ecs"], ("main-job", 1))

    with pytest.raises(LookupError, match="background-job"):
        status.service_statuses(aws["ecs"], "fleet", ["main-job", "background-job"])


def test_render_shows_unknown_age_as_na_and_formats_long_ages():
    """The report prints n/a for an unknown age and minutes or hours for long ones."""
    text = status.render(
        [
            status.QueueStatus("triggers", 5, 1, 0, None),
            status.QueueStatus("triggers-dlq", 2, 0, 0, 4000.0),
            status.QueueStatus("jobs", 0, 0, 0, 9000.0),
        ],
        [status.ServiceStatus("main-job", 1, 2, 1)],
    )

    lines = text.splitlines()
    assert lines[1].split() == ["triggers", "5", "1", "0", "n/a"]
    assert lines[2].split()[-1] == "66m"
    assert lines[3].split()[-1] == "2h30m"
    assert lines[-1].split() == ["main-job", "1", "2", "1"]


def test_main_prints_every_queue_and_service(aws, capsys):
    """The command line prints one row per queue and per service and exits 0."""
    sqs = aws["sqs"]
    urls = [sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("triggers", "triggers-dlq")]
    sqs.send_message(QueueUrl=urls[1], MessageBody="poison")
    _ecs_services(aws["ecs"], ("main-job", 1), ("background-job", 3))
    argv = ["--region", REGION, "--cluster", "fleet", "--service", "main-job", "--service", "background-job"]
    for url in urls:
        argv += ["--queue", url]

    exit_code = status.main(argv)

    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line]
    assert exit_code == 0
    assert ["triggers-dlq", "1", "0", "0", "n/a"] in rows
    assert [rows[-1][0], rows[-1][2]] == ["background-job", "3"]


def test_main_exits_1_when_a_service_is_missing(aws, capsys):
    """A wrong service name is an error on stderr, not a traceback."""
    _ecs_services(aws["ecs"], ("main-job", 1))

    exit_code = status.main(["--region", REGION, "--cluster", "fleet", "--service", "nope"])

    assert exit_code == 1
    assert "nope" in capsys.readouterr().err
