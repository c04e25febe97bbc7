"""The local fleet plays EventBridge Scheduler: due ticks become trigger messages, once, with the tick's time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.job_ids import job_id_for_tick, job_timestamp
from common.messages import parse_trigger
from common.names import FleetNames
from fleet.local.scheduler import SchedulerPlayer
from fleet.schedules import api
from fleet.schedules.declaration import parse_entry

NAMES = FleetNames.for_deployment("fleet-test", "test")
TRIGGER = {"trigger": "heartbeat", "jobType": "main-job-processing"}


@dataclass
class Rig:
    scheduler: Any
    sqs: Any
    queue_url: str
    wiring: api.Wiring
    player: SchedulerPlayer
    now: list[datetime]

    def at(self, moment: datetime) -> int:
        self.now[0] = moment
        return self.player.fire_due()

    def bodies(self) -> list[dict[str, Any]]:
        found = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def rig() -> Iterator[Rig]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        scheduler = boto3.client("scheduler", region_name="us-east-1")
        url = sqs.create_queue(QueueName=NAMES.trigger_queue)["QueueUrl"]
        dlq = sqs.create_queue(QueueName=NAMES.trigger_dlq)["QueueUrl"]
        arn = {
            u: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for u in (url, dlq)
        }
        wiring = api.Wiring.for_queues(NAMES, queue_arn=arn[url], dlq_arn=arn[dlq])
        api.ensure_group(scheduler, wiring.group)
        now = [datetime.now(UTC)]
        player = SchedulerPlayer(
            scheduler=scheduler, sqs=sqs, group=wiring.group, say=lambda _: None, clock=lambda: now[0]
        )
        yield Rig(scheduler, sqs, url, wiring, player, now)


def _minute_after(moment: datetime, minutes: int) -> datetime:
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=minutes)


def test_rate_schedule_sends_one_trigger_per_tick_whose_job_id_is_the_scheduled_minute(rig: Rig) -> None:
    """rate(1 minute): nothing before the minute, one message per minute, each carrying its tick."""
    api.create_declared(
        rig.scheduler, parse_entry("heartbeat", {"expression": "rate(1 minute)", "trigger": TRIGGER}), rig.wiring
    )
    start = rig.now[0]
    first, second = _minute_after(start, 1), _minute_after(start, 2)

    sent = [rig.at(start), rig.at(first + timedelta(seconds=1)), rig.at(first + timedelta(seconds=2)), rig.at(second)]

    bodies = rig.bodies()
    ticks = [parse_trigger(json.dumps(body)).schedule for body in bodies]
    assert [0, 1, 0, 1] == sent
    assert [("heartbeat", first), ("heartbeat", second)] == [(t.name, t.scheduled_time) for t in ticks if t]
    assert "heartbeat" == bodies[0]["trigger"]


def test_paused_schedule_does_not_fire_until_resumed(rig: Rig) -> None:
    """fleet schedules pause sets DISABLED; the player skips it; resume brings the next tick back."""
    api.create_declared(
        rig.scheduler, parse_entry("heartbeat", {"expression": "rate(1 minute)", "trigger": TRIGGER}), rig.wiring
    )
    start = rig.now[0]
    api.set_state(rig.scheduler, rig.wiring.group, "heartbeat", "DISABLED")

    paused = rig.at(_minute_after(start, 1))
    api.set_state(rig.scheduler, rig.wiring.group, "heartbeat", "ENABLED")
    rig.at(_minute_after(start, 1) + timedelta(seconds=1))
    resumed = rig.at(_minute_after(start, 2))

    assert (0, 1) == (paused, resumed)
    schedule = rig.scheduler.get_schedule(Name="heartbeat", GroupName=rig.wiring.group)
    assert ("rate(1 minute)", TRIGGER["trigger"]) == (
        schedule["ScheduleExpression"],
        json.loads(schedule["Target"]["Input"])["trigger"],
    )


def test_one_time_schedule_fires_once_and_is_deleted(rig: Rig) -> None:
    """at() with ActionAfterCompletion DELETE: one trigger at its time, then the schedule is gone."""
    when = (rig.now[0] + timedelta(minutes=30)).replace(microsecond=0)
    api.create_one_time(rig.scheduler, rig.wiring, name="at-once", at=when, trigger={"trigger": "later"})

    before = rig.at(when - timedelta(seconds=1))
    fired = rig.at(when)
    again = rig.at(when + timedelta(minutes=5))

    [body] = rig.bodies()
    tick = parse_trigger(json.dumps(body)).schedule
    assert (0, 1, 0) == (before, fired, again)
    assert tick is not None
    assert when == tick.scheduled_time
    assert [] == rig.scheduler.list_schedules(GroupName=rig.wiring.group)["Schedules"]


def test_scheduled_time_is_what_the_job_id_decodes_to(rig: Rig) -> None:
    """The tick main_job reads back is the minute the schedule was due, not when the message was sent."""
    api.create_declared(
        rig.scheduler, parse_entry("heartbeat", {"expression": "cron(* * * * ? *)", "trigger": TRIGGER}), rig.wiring
    )
    due = _minute_after(rig.now[0], 1)
    rig.at(rig.now[0])

    rig.at(due + timedelta(seconds=40))  # the player was late: the tick still names its minute

    [body] = rig.bodies()
    tick = parse_trigger(json.dumps(body)).schedule
    assert tick is not None
    assert due == job_timestamp(job_id_for_tick(tick.name, tick.scheduled_time))


def test_a_tick_that_cannot_be_delivered_is_retried_then_dead_lettered_and_others_still_fire(rig: Rig) -> None:
    """A schedule whose queue is gone keeps its tick due until its retry age, then sends it to its DLQ."""
    api.create_declared(
        rig.scheduler, parse_entry("heartbeat", {"expression": "rate(1 minute)", "trigger": TRIGGER}), rig.wiring
    )
    gone = api.Wiring(
        group=rig.wiring.group,
        queue_arn=rig.wiring.queue_arn + "-deleted",
        dlq_arn=rig.wiring.dlq_arn,
        role_arn=rig.wiring.role_arn,
    )
    api.create_one_time(rig.scheduler, gone, name="at-lost", at=_minute_after(rig.now[0], 1), trigger={"trigger": "x"})
    due = _minute_after(rig.now[0], 1)
    rig.at(rig.now[0])

    first = rig.at(due)  # heartbeat delivered; at-lost fails and stays due
    retried = rig.at(due + timedelta(seconds=30))
    dead = rig.at(due + timedelta(seconds=api.MAX_EVENT_AGE_SECONDS + 1))  # at-lost to the DLQ, heartbeat's next

    dlq_url = rig.sqs.get_queue_url(QueueName=NAMES.trigger_dlq)["QueueUrl"]
    [parked] = rig.sqs.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert (1, 0, 2) == (first, retried, dead)
    assert ["heartbeat", "heartbeat"] == [body["schedule"]["name"] for body in rig.bodies()]
    assert {"name": "at-lost", "scheduledTime": due.strftime("%Y-%m-%dT%H:%M:%SZ")} == json.loads(parked["Body"])[
        "schedule"
    ]
