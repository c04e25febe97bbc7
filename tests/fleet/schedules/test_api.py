"""The Scheduler calls the CLI and the local fleet share: the same input and wiring as tf/schedules.tf."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from common.names import FleetNames
from common.schedule_tick import SCHEDULED_TIME_PLACEHOLDER
from fleet.schedules import api
from fleet.schedules.declaration import parse_entry

NAMES = FleetNames.for_deployment("fleet-test", "test")
QUEUE_ARN = "arn:aws-cn:sqs:cn-north-1:111122223333:fleet-test-test-main-job-triggers"
DLQ_ARN = QUEUE_ARN + "-dlq"


def test_input_is_the_trigger_plus_the_tick_with_the_context_attribute_unescaped() -> None:
    """Scheduler substitutes only the literal <aws.scheduler.scheduled-time>: json.dumps must not escape it."""
    text = api.input_template({"trigger": "nightly", "data": {"a": 1}}, "nightly-report")

    assert SCHEDULED_TIME_PLACEHOLDER in text
    assert {
        "trigger": "nightly",
        "data": {"a": 1},
        "schedule": {"name": "nightly-report", "scheduledTime": SCHEDULED_TIME_PLACEHOLDER},
    } == json.loads(text)


def test_role_arn_follows_the_queues_partition_and_account() -> None:
    """No STS call: the scheduler role lives in the queue's account and partition, named by FleetNames."""
    wiring = api.Wiring.for_queues(NAMES, queue_arn=QUEUE_ARN, dlq_arn=DLQ_ARN, kms_key_id="alias/aws/sqs")

    assert "arn:aws-cn:iam::111122223333:role/fleet-test-test-scheduler" == wiring.role_arn
    assert (NAMES.schedule_group, None) == (wiring.group, wiring.kms_key_arn)


def test_declared_schedule_is_created_as_terraform_declares_it() -> None:
    """Expression, zone, state, flexible window, retries and DLQ: what aws_scheduler_schedule.this sets."""
    entry = {
        "expression": "cron(0 2 * * ? *)",
        "timezone": "Europe/London",
        "flexible_window_minutes": 15,
        "enabled": False,
        "description": "nightly",
        "trigger": {"trigger": "nightly"},
    }
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name="us-east-1")
        wiring = api.Wiring.for_queues(NAMES, queue_arn=QUEUE_ARN, dlq_arn=DLQ_ARN)
        api.ensure_group(scheduler, wiring.group)
        api.ensure_group(scheduler, wiring.group)  # idempotent
        api.create_declared(scheduler, parse_entry("nightly-report", entry), wiring)
        [schedule] = api.describe_all(scheduler, wiring.group)

    target = schedule["Target"]
    assert ("cron(0 2 * * ? *)", "Europe/London", "DISABLED", "nightly") == (
        schedule["ScheduleExpression"],
        schedule["ScheduleExpressionTimezone"],
        schedule["State"],
        schedule["Description"],
    )
    assert {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15} == schedule["FlexibleTimeWindow"]
    assert (QUEUE_ARN, DLQ_ARN) == (target["Arn"], target["DeadLetterConfig"]["Arn"])
    assert {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600} == target["RetryPolicy"]
