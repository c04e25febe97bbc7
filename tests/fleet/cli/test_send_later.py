"""Tests for `fleet send --at/--in` (fleet/cli/send_later.py): SQS delay to 15 minutes, a one-time schedule beyond."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from common.job_ids import job_id_for_tick
from common.schedule_tick import SCHEDULED_TIME_PLACEHOLDER


@pytest.fixture
def scheduler(fleet):
    client = boto3.client("scheduler", region_name="us-east-1")
    client.create_schedule_group(Name=fleet.names.schedule_group)
    return client


def _delayed(fleet) -> int:
    attributes = fleet.sqs.get_queue_attributes(
        QueueUrl=fleet.urls["triggers"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_within_fifteen_minutes_the_trigger_is_sent_now_with_delay_seconds(fleet, scheduler):
    """--in 5m is one SendMessage with DelaySeconds=300; no schedule is created."""
    result = fleet.run("send", "--trigger", "orders", "--in", "5m")

    assert 0 == result.code, result.err
    assert "delayed    300s by SQS DelaySeconds" in result.out
    assert 1 == _delayed(fleet)
    assert [] == scheduler.list_schedules(GroupName=fleet.names.schedule_group)["Schedules"]


def test_beyond_fifteen_minutes_a_one_time_schedule_holds_the_trigger(fleet, scheduler):
    """--in 2h creates at() in UTC, deleted after completion, sending the trigger plus its tick to the trigger queue."""
    before = datetime.now(UTC)
    result = fleet.run("send", "--trigger", "orders", "--data", '{"n": 1}', "--in", "2h")

    [summary] = scheduler.list_schedules(GroupName=fleet.names.schedule_group)["Schedules"]
    schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=fleet.names.schedule_group)
    runs_at = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    body = json.loads(schedule["Target"]["Input"])
    queue_arn = fleet.sqs.get_queue_attributes(QueueUrl=fleet.urls["triggers"], AttributeNames=["QueueArn"])
    assert 0 == result.code, result.err
    assert timedelta(hours=2) - timedelta(seconds=2) <= runs_at - before <= timedelta(hours=2, seconds=2)
    assert ("UTC", "DELETE", "ENABLED") == (
        schedule["ScheduleExpressionTimezone"],
        schedule["ActionAfterCompletion"],
        schedule["State"],
    )
    assert queue_arn["Attributes"]["QueueArn"] == schedule["Target"]["Arn"]
    assert schedule["Target"]["RoleArn"].endswith(f":role/{fleet.names.scheduler_role}")
    assert {"name": summary["Name"], "scheduledTime": SCHEDULED_TIME_PLACEHOLDER} == body["schedule"]
    assert ("orders", {"n": 1}) == (body["trigger"], body["data"])
    assert f"jobId      {job_id_for_tick(summary['Name'], runs_at)}" in result.out
    assert 0 == _delayed(fleet)


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--at", "2030-01-01T10:00:00"], "give its offset"),
        (["--at", "2001-01-01T10:00:00Z"], "is not in the future"),
        (["--at", "tomorrow"], "expected an ISO 8601 time"),
        (["--in", "0m"], "expected a positive number"),
        (["--in", "2w"], "expected a positive number"),
        (["--in", "2h", "--at", "2030-01-01T10:00:00Z"], "not both"),
        (["--in", "2h", "--wait", "5"], "--wait cannot be combined"),
    ],
)
def test_a_time_that_cannot_be_meant_is_refused_and_nothing_is_sent(fleet, scheduler, flags, reason):
    """Usage errors exit 2 with the reason; no message, no schedule."""
    result = fleet.run("send", "--trigger", "orders", *flags)

    assert 2 == result.code
    assert reason in result.err
    assert 0 == fleet.depth("triggers") + _delayed(fleet)
    assert [] == scheduler.list_schedules(GroupName=fleet.names.schedule_group)["Schedules"]


def test_without_the_schedule_group_the_operator_is_told_to_deploy_it(fleet):
    """No group (schedules.tf not applied): one line saying what to do, exit 1."""
    result = fleet.run("send", "--trigger", "orders", "--in", "1d")

    assert 1 == result.code
    assert f"schedule group {fleet.names.schedule_group} does not exist" in result.err
