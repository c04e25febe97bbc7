"""Plays EventBridge Scheduler locally: sends each schedule's ticks to its target queue, on time.

The emulator stores schedules (moto implements the Scheduler API) but never fires them. This player
reads them back through that API, as ``fleet schedules`` does, so the declared schedules, ``fleet send
--at``'s one-offs and ``fleet schedules pause|resume`` behave locally as on AWS: a tick becomes one
SendMessage of the schedule's input to its target queue, with Scheduler's context attributes filled in
(``<aws.scheduler.scheduled-time>`` and the others, as documented in "Adding context attributes"), and
an ``at()`` schedule with ActionAfterCompletion DELETE is deleted once it has fired. It runs in the
tools, never in the workers, exactly as the log shipper plays the awslogs driver.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from common.schedule_tick import SCHEDULED_TIME_PLACEHOLDER, format_scheduled_time
from fleet.schedules.api import describe_all
from fleet.schedules.expressions import Expression, InvalidExpression, parse

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

POLL_SECONDS: Final = 1.0


@dataclass(slots=True)
class _Tracked:
    """One schedule's next tick, valid while the schedule is unchanged (LastModificationDate)."""

    version: object
    due: datetime | None


class SchedulerPlayer:
    """Fires the due ticks of one schedule group; :meth:`fire_due` is one pass, :meth:`start` a thread of them."""

    def __init__(
        self,
        *,
        scheduler: Any,  # noqa: ANN401 - no Scheduler stubs installed
        sqs: SQSClient,
        group: str,
        say: Callable[[str], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._scheduler = scheduler
        self._sqs = sqs
        self._group = group
        self._say = say
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._queue_urls: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def next_fire_times(self) -> list[tuple[str, str, datetime | None]]:
        """(name, state, next tick) for every schedule of the group, for the fleet's start-up banner."""
        now = self._clock()
        return [
            (str(schedule["Name"]), str(schedule["State"]), _next_after(schedule, now))
            for schedule in describe_all(self._scheduler, self._group)
        ]

    def start(self) -> SchedulerPlayer:
        self._thread = threading.Thread(target=self._run, name="scheduler-player", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.fire_due()
            except (BotoCoreError, ClientError) as error:  # the emulator is stopping, or a call failed: next pass
                self._say(f"scheduler: pass failed, retrying: {error}")

    def fire_due(self) -> int:
        """Send every tick that is due now; return how many were sent."""
        now = self._clock()
        sent = 0
        schedules = describe_all(self._scheduler, self._group)
        self._tracked = {k: v for k, v in self._tracked.items() if k in {s["Name"] for s in schedules}}
        for schedule in schedules:
            try:
                sent += self._fire_if_due(schedule, now)
            except (BotoCoreError, ClientError, KeyError, IndexError) as error:
                # One broken schedule (a target that is gone, not a queue) must not hold up the others;
                # its tick stays due and is retried next pass, as Scheduler retries by its RetryPolicy.
                self._say(f"scheduler: {schedule.get('Name')}: delivery failed, retrying: {error}")
        return sent

    def _fire_if_due(self, schedule: dict[str, Any], now: datetime) -> int:
        name = str(schedule["Name"])
        tracked = self._tracked.get(name)
        if tracked is None or tracked.version != schedule.get("LastModificationDate"):
            # First seen or changed: its next tick from now (a one-off already past is due at once).
            tracked = _Tracked(schedule.get("LastModificationDate"), _first_due(schedule, now))
            self._tracked[name] = tracked
        if schedule.get("State") != "ENABLED" or tracked.due is None or tracked.due > now:
            return 0
        tick = tracked.due
        if (now - tick).total_seconds() > _max_event_age(schedule):
            self._dead_letter(schedule, tick)
        else:
            self._send(schedule, tick)
        # Scheduler does not replay a backlog: the next tick is the first one after now.
        tracked.due = _next_after(schedule, max(now, tick))
        if tracked.due is None and schedule.get("ActionAfterCompletion") == "DELETE":
            self._scheduler.delete_schedule(Name=name, GroupName=self._group)
            self._tracked.pop(name, None)
        return 1

    def _send(self, schedule: dict[str, Any], tick: datetime) -> None:
        target = schedule["Target"]
        body = _render(str(target.get("Input", "")), schedule, tick)
        message_id = self._sqs.send_message(QueueUrl=self._queue_url(str(target["Arn"])), MessageBody=body)["MessageId"]
        self._say(f"scheduler: {schedule['Name']} fired for {format_scheduled_time(tick)} (MessageId {message_id})")

    def _dead_letter(self, schedule: dict[str, Any], tick: datetime) -> None:
        """Past its RetryPolicy's MaximumEventAgeInSeconds: to the schedule's DLQ, as Scheduler does."""
        dead_letter = schedule["Target"].get("DeadLetterConfig", {}).get("Arn")
        tick_text = format_scheduled_time(tick)
        if dead_letter is None:
            self._say(f"scheduler: {schedule['Name']}: tick {tick_text} dropped after its retries (no DLQ)")
            return
        body = _render(str(schedule["Target"].get("Input", "")), schedule, tick)
        self._sqs.send_message(QueueUrl=self._queue_url(str(dead_letter)), MessageBody=body)
        self._say(f"scheduler: {schedule['Name']}: tick {tick_text} sent to its DLQ after its retries")

    def _queue_url(self, arn: str) -> str:
        """SQS targets are named by ARN (arn:aws:sqs:region:account:name); SendMessage wants the URL."""
        if arn not in self._queue_urls:
            name, account = arn.split(":")[5], arn.split(":")[4]
            self._queue_urls[arn] = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return self._queue_urls[arn]


def _render(template: str, schedule: dict[str, Any], tick: datetime) -> str:
    """Scheduler's context attributes, replaced as it replaces them when it invokes the target."""
    return (
        template.replace(SCHEDULED_TIME_PLACEHOLDER, format_scheduled_time(tick))
        .replace("<aws.scheduler.schedule-arn>", str(schedule.get("Arn", "")))
        .replace("<aws.scheduler.execution-id>", secrets.token_hex(8))
        .replace("<aws.scheduler.attempt-number>", "1")
    )


def _max_event_age(schedule: dict[str, Any]) -> float:
    """Scheduler's RetryPolicy default is 86400 s (24 hours) when the schedule sets none."""
    policy = schedule["Target"].get("RetryPolicy") or {}
    return float(policy.get("MaximumEventAgeInSeconds", 86400))


def _expression(schedule: dict[str, Any]) -> Expression | None:
    try:
        return parse(str(schedule["ScheduleExpression"]), str(schedule.get("ScheduleExpressionTimezone") or "UTC"))
    except InvalidExpression:
        return None


def _first_due(schedule: dict[str, Any], now: datetime) -> datetime | None:
    expression = _expression(schedule)
    if expression is None:
        return None
    if expression.at is not None:
        return expression.at  # past or future: a one-off fires once either way
    return _next_after(schedule, now)


def _next_after(schedule: dict[str, Any], after: datetime) -> datetime | None:
    expression = _expression(schedule)
    if expression is None:
        return None
    anchor = schedule.get("StartDate") or schedule.get("CreationDate")
    return expression.next_after(after, anchor=anchor) if isinstance(anchor, datetime) else expression.next_after(after)
