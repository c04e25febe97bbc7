"""Tests for `fleet schedules` (fleet/cli/schedules.py) on moto: listing with next fire times, pause and resume."""

from __future__ import annotations

import json

import boto3
import pytest

from fleet.schedules import api
from fleet.schedules.declaration import parse_entry

NIGHTLY = {
    "expression": "cron(0 2 * * ? *)",
    "timezone": "Europe/London",
    "description": "the nightly report",
    "flexible_window_minutes": 15,
    "trigger": {"trigger": "nightly_report"},
}


@pytest.fixture
def scheduler(fleet):
    client = boto3.client("scheduler", region_name="us-east-1")
    arns = {
        alias: fleet.sqs.get_queue_attributes(QueueUrl=fleet.urls[alias], AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for alias in ("triggers", "triggers-dlq")
    }
    wiring = api.Wiring.for_queues(fleet.names, queue_arn=arns["triggers"], dlq_arn=arns["triggers-dlq"])
    api.ensure_group(client, wiring.group)
    api.create_declared(client, parse_entry("nightly-report", NIGHTLY), wiring)
    api.create_declared(
        client,
        parse_entry("heartbeat", {"expression": "rate(1 minute)", "enabled": False, "trigger": {"trigger": "hb"}}),
        wiring,
    )
    return client


def test_lists_every_schedule_with_expression_zone_state_and_next_fire(fleet, scheduler):
    """The table shows each schedule; a paused one has no next fire time."""
    result = fleet.run("schedules")

    lines = result.out.splitlines()
    assert 0 == result.code, result.err
    assert f"schedule group {fleet.names.schedule_group}" == lines[0]
    [heartbeat] = [line for line in lines if line.startswith("heartbeat")]
    [nightly] = [line for line in lines if line.startswith("nightly-report")]
    assert ["heartbeat", "paused", "rate(1", "minute)", "UTC", "-"] == heartbeat.split()
    assert ["nightly-report", "enabled", "cron(0", "2", "*", "*", "?", "*)", "Europe/London"] == nightly.split()[:-1]
    assert nightly.split()[-1].endswith(("T02:00:00Z", "T01:00:00Z"))  # 02:00 London is 02:00 or 01:00 UTC
    assert "0 trigger(s) delayed in the trigger queue (SQS DelaySeconds)" == lines[-1]


def test_delayed_triggers_are_counted_below_the_schedules(fleet, scheduler):
    """fleet send --in under 15 minutes is an SQS delay, not a schedule: it shows as a count until it runs."""
    fleet.run("send", "--trigger", "soon", "--in", "20s")

    result = fleet.run("schedules", "--json")

    listing = json.loads(result.out)
    assert 1 == listing["delayed_triggers"]
    assert ["heartbeat", "nightly-report"] == [s["name"] for s in listing["schedules"]]


def test_pause_and_resume_change_the_state_and_keep_everything_else(fleet, scheduler):
    """UpdateSchedule resets what it is not given: pause copies every field, so only State changes."""
    group = fleet.names.schedule_group
    before = scheduler.get_schedule(Name="nightly-report", GroupName=group)

    paused = fleet.run("schedules", "pause", "nightly-report")
    during = scheduler.get_schedule(Name="nightly-report", GroupName=group)
    resumed = fleet.run("schedules", "resume", "nightly-report")
    after = scheduler.get_schedule(Name="nightly-report", GroupName=group)

    kept = ("ScheduleExpression", "ScheduleExpressionTimezone", "Description", "FlexibleTimeWindow", "Target")
    assert (0, 0) == (paused.code, resumed.code)
    assert paused.out.startswith("paused nightly-report (was enabled)")
    assert "terraform apply restores the state declared" in paused.out
    assert ("DISABLED", "ENABLED") == (during["State"], after["State"])
    assert {key: before[key] for key in kept} == {key: during[key] for key in kept}


def test_pausing_an_unknown_schedule_says_so(fleet, scheduler):
    """A typo is one line naming the group, exit 1."""
    result = fleet.run("schedules", "pause", "nightly-reprot")

    assert 1 == result.code
    assert f"no schedule nightly-reprot in group {fleet.names.schedule_group}" in result.err
