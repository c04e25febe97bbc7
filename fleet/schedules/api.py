"""EventBridge Scheduler calls the fleet makes: schedules as Terraform declares them, one-offs, listing, state.

Shared by the local fleet (which creates the declared schedules in the emulator, as ``terraform apply``
does on AWS, and then plays Scheduler by reading them back) and by ``fleet send --at`` / ``fleet
schedules``. Every request is the documented Scheduler API, so the same code runs against AWS.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from common.names import FleetNames
from common.schedule_tick import SCHEDULED_TIME_PLACEHOLDER
from fleet.schedules.declaration import DeclaredSchedule

#: Terraform's values (tf/schedules.tf variable defaults), so a local schedule is configured like a deployed one.
RETRY_ATTEMPTS: Final = 10
MAX_EVENT_AGE_SECONDS: Final = 3600
#: UpdateSchedule replaces the whole schedule: every field it accepts is copied from GetSchedule.
_UPDATABLE: Final = (
    "ActionAfterCompletion",
    "Description",
    "EndDate",
    "FlexibleTimeWindow",
    "GroupName",
    "KmsKeyArn",
    "Name",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "Target",
)


@dataclass(frozen=True, slots=True)
class Wiring:
    """Where schedules send, and as whom: the trigger queue, its DLQ, the scheduler role, the key."""

    group: str
    queue_arn: str
    dlq_arn: str
    role_arn: str
    kms_key_arn: str | None = None

    @classmethod
    def for_queues(cls, names: FleetNames, *, queue_arn: str, dlq_arn: str, kms_key_id: str | None = None) -> Wiring:
        """The role's ARN follows from the queue's (same partition and account) and FleetNames."""
        partition, account = queue_arn.split(":")[1], queue_arn.split(":")[4]
        return cls(
            group=names.schedule_group,
            queue_arn=queue_arn,
            dlq_arn=dlq_arn,
            role_arn=f"arn:{partition}:iam::{account}:role/{names.scheduler_role}",
            kms_key_arn=kms_key_id if kms_key_id and kms_key_id.startswith("arn:") else None,
        )


def input_template(trigger: Mapping[str, Any], name: str) -> str:
    """The target input: the trigger plus the tick, Scheduler filling in ``scheduledTime`` (as tf/schedules.tf)."""
    return json.dumps(
        {**trigger, "schedule": {"name": name, "scheduledTime": SCHEDULED_TIME_PLACEHOLDER}}, separators=(",", ":")
    )


def ensure_group(scheduler: Any, group: str) -> None:  # noqa: ANN401 - no Scheduler stubs installed
    with contextlib.suppress(scheduler.exceptions.ConflictException):
        scheduler.create_schedule_group(Name=group)


def create_declared(scheduler: Any, schedule: DeclaredSchedule, wiring: Wiring) -> None:  # noqa: ANN401
    """Create ``schedule`` as ``aws_scheduler_schedule.this`` would."""
    window: dict[str, Any] = (
        {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": schedule.flexible_window_minutes}
        if schedule.flexible_window_minutes
        else {"Mode": "OFF"}
    )
    scheduler.create_schedule(
        **_common(wiring, schedule.name, input_template(schedule.trigger, schedule.name)),
        Description=schedule.description,
        ScheduleExpression=schedule.expression.text,
        ScheduleExpressionTimezone=schedule.timezone,
        State="ENABLED" if schedule.enabled else "DISABLED",
        FlexibleTimeWindow=window,
    )


def create_one_time(
    scheduler: Any,  # noqa: ANN401
    wiring: Wiring,
    *,
    name: str,
    at: datetime,
    trigger: Mapping[str, Any],
) -> None:
    """A one-time ``at()`` schedule (UTC) that Scheduler deletes once it has fired."""
    scheduler.create_schedule(
        **_common(wiring, name, input_template(trigger, name)),
        Description=f"fleet send --at {at.isoformat()}",
        ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        State="ENABLED",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
    )


def _common(wiring: Wiring, name: str, body: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Name": name,
        "GroupName": wiring.group,
        "Target": {
            "Arn": wiring.queue_arn,
            "RoleArn": wiring.role_arn,
            "Input": body,
            "RetryPolicy": {"MaximumRetryAttempts": RETRY_ATTEMPTS, "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS},
            "DeadLetterConfig": {"Arn": wiring.dlq_arn},
        },
    }
    if wiring.kms_key_arn:
        request["KmsKeyArn"] = wiring.kms_key_arn
    return request


def describe_all(scheduler: Any, group: str) -> list[dict[str, Any]]:  # noqa: ANN401
    """Every schedule of the group in full (ListSchedules omits the expression): GetSchedule each."""
    found: list[dict[str, Any]] = []
    for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group):
        for summary in page["Schedules"]:
            try:
                found.append(scheduler.get_schedule(Name=summary["Name"], GroupName=group))
            except scheduler.exceptions.ResourceNotFoundException:
                continue  # deleted between the listing and now (a one-off that just fired)
    return sorted(found, key=lambda schedule: str(schedule["Name"]))


def set_state(scheduler: Any, group: str, name: str, state: str) -> dict[str, Any]:  # noqa: ANN401
    """ENABLED or DISABLED, keeping everything else: UpdateSchedule resets any field it is not given."""
    current = scheduler.get_schedule(Name=name, GroupName=group)
    request = {key: current[key] for key in _UPDATABLE if key in current}
    scheduler.update_schedule(**request, State=state)
    return dict(current)
