"""A scheduled trigger's tick: which schedule fired, and for which scheduled time.

EventBridge Scheduler delivers at least once, so one tick can reach the trigger queue twice, as two SQS
messages with two MessageIds. A scheduled trigger therefore carries ``schedule`` =
``{"name": ..., "scheduledTime": ...}`` (Terraform puts it in the schedule's input, with Scheduler's
``<aws.scheduler.scheduled-time>`` context attribute), and main_job derives the job ID from that pair
instead of from the message: both deliveries of a tick are one job (:func:`common.job_ids.job_id_for_tick`).

Schedule names end up in AWS resource names (the schedule, its alarm), so they are checked here, once,
for every producer: the declaration file, ``fleet send --at`` and main_job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

#: Lower-case letters, digits and hyphens, starting with a letter; Scheduler allows 1-64 of [0-9a-zA-Z-_.].
SCHEDULE_NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9-]{0,62}")
#: Scheduler's context attribute, replaced by the tick's time when it invokes the target.
SCHEDULED_TIME_PLACEHOLDER: Final = "<aws.scheduler.scheduled-time>"
#: The form Scheduler substitutes, for example 2022-03-22T18:59:43Z (UTC, whole seconds).
_SCHEDULED_TIME_PATTERN: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class InvalidTick(ValueError):
    """A schedule name or scheduled time that must not become a job ID or a resource name."""


@dataclass(frozen=True, slots=True)
class ScheduledTick:
    """One firing of one schedule."""

    name: str
    scheduled_time: datetime

    @property
    def scheduled_time_text(self) -> str:
        return format_scheduled_time(self.scheduled_time)

    def to_document(self) -> dict[str, str]:
        """The ``schedule`` field of a trigger, as Scheduler's input renders it."""
        return {"name": self.name, "scheduledTime": self.scheduled_time_text}


def require_schedule_name(value: object) -> str:
    if not isinstance(value, str) or SCHEDULE_NAME_PATTERN.fullmatch(value) is None:
        raise InvalidTick(
            f"schedule name must match {SCHEDULE_NAME_PATTERN.pattern} (lower-case letters, digits, '-'; 1-63)"
        )
    return value


def parse_scheduled_time(value: object) -> datetime:
    """Scheduler's ``scheduled-time`` (``YYYY-MM-DDThh:mm:ssZ``) as an aware UTC datetime."""
    if value == SCHEDULED_TIME_PLACEHOLDER:
        raise InvalidTick(f"scheduledTime is the unsubstituted {SCHEDULED_TIME_PLACEHOLDER}: not sent by Scheduler")
    if not isinstance(value, str) or _SCHEDULED_TIME_PATTERN.fullmatch(value) is None:
        raise InvalidTick("scheduledTime must be a UTC time like 2026-12-04T14:00:00Z")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidTick(f"scheduledTime {value!r} is not a real time") from None


def format_scheduled_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tick_from_document(value: object) -> ScheduledTick:
    """The ``schedule`` field of a trigger: ``{"name": ..., "scheduledTime": ...}``."""
    if not isinstance(value, dict):
        raise InvalidTick("must be an object with 'name' and 'scheduledTime'")
    return ScheduledTick(require_schedule_name(value.get("name")), parse_scheduled_time(value.get("scheduledTime")))
