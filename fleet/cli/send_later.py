"""``fleet send --at TIME`` / ``--in DURATION``: a trigger that runs later, by SQS delay or a one-time schedule.

SQS delays a message by at most 15 minutes (DelaySeconds 0-900), so a time within that is a plain
SendMessage with DelaySeconds, exact to the second and nothing to clean up. A later time becomes a
one-time EventBridge Scheduler schedule, ``at()`` in UTC with ActionAfterCompletion DELETE, in the
deployment's schedule group and sending through the scheduler role, exactly like a declared schedule.
Its job ID is known at once: it is the tick's (:func:`common.job_ids.job_id_for_tick`), so it is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from ulid import ULID

from common.job_ids import job_id_for_tick
from common.names import FleetNames
from fleet.cli.errors import OpsError, UsageError
from fleet.cli.queues import resolve, resolve_dlq
from fleet.cli.send import validate
from fleet.schedules import api

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from fleet.cli.cli import Runtime
    from fleet.cli.deployment import Deployment

#: SQS's limit on DelaySeconds (SendMessage, "Valid values: 0 to 900").
MAX_SQS_DELAY_SECONDS: Final = 900
ONE_TIME_PREFIX: Final = "once-"
_DURATION: Final = re.compile(r"(\d+)([smhd])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True, slots=True)
class Delayed:
    """A trigger sent now with DelaySeconds."""

    message_id: str
    delay_seconds: int
    runs_at: datetime


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A trigger held by a one-time schedule until ``runs_at``."""

    schedule_name: str
    group: str
    job_id: str
    runs_at: datetime


def when(*, at: str | None, in_: str | None, now: datetime) -> datetime:
    """The UTC time from ``--at`` (ISO 8601 with an offset) or ``--in`` (``90s``, ``20m``, ``2h``, ``3d``)."""
    if at is not None and in_ is not None:
        raise UsageError("give --at or --in, not both")
    if in_ is not None:
        match = _DURATION.fullmatch(in_.strip())
        if match is None or int(match.group(1)) <= 0:
            raise UsageError(f"--in {in_!r}: expected a positive number and a unit s, m, h or d (e.g. 20m)")
        moment = now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        moment = _parse_at(str(at))
    if moment <= now:
        raise UsageError(f"--at {moment.isoformat()} is not in the future (now {now.isoformat(timespec='seconds')})")
    return moment.astimezone(UTC)


def _parse_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--at {text!r}: expected an ISO 8601 time such as 2026-12-24T18:00:00Z") from None
    if moment.tzinfo is None:
        raise UsageError(f"--at {text!r}: give its offset (Z, +01:00), so it means the same time everywhere")
    return moment


def send_later(
    sqs: SQSClient,
    scheduler: Any,  # noqa: ANN401 - no Scheduler stubs installed
    names: FleetNames,
    body: str,
    *,
    runs_at: datetime,
    now: datetime,
) -> Delayed | Scheduled:
    """SQS DelaySeconds within 15 minutes, a one-time schedule beyond."""
    validate(body)
    trigger = json.loads(body)
    if "schedule" in trigger:
        raise UsageError("trigger refused, not sent: 'schedule' is set by the schedule itself")
    delay = math.ceil((runs_at - now).total_seconds())
    queue = resolve(sqs, names, "triggers")
    if delay <= MAX_SQS_DELAY_SECONDS:
        message_id = sqs.send_message(QueueUrl=queue.url, MessageBody=body, DelaySeconds=delay)["MessageId"]
        return Delayed(message_id, delay, now + timedelta(seconds=delay))
    return _schedule_once(sqs, scheduler, names, trigger, runs_at=runs_at.replace(microsecond=0), queue_url=queue.url)


def _schedule_once(
    sqs: SQSClient,
    scheduler: Any,  # noqa: ANN401 - no Scheduler stubs installed
    names: FleetNames,
    trigger: dict[str, Any],
    *,
    runs_at: datetime,
    queue_url: str,
) -> Scheduled:
    dlq_url = resolve_dlq(sqs, names, "triggers").url
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "KmsMasterKeyId"])[
        "Attributes"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    wiring = api.Wiring.for_queues(
        names, queue_arn=attributes["QueueArn"], dlq_arn=dlq_arn, kms_key_id=attributes.get("KmsMasterKeyId")
    )
    try:
        scheduler.get_schedule_group(Name=wiring.group)
    except scheduler.exceptions.ResourceNotFoundException:
        raise OpsError(
            f"schedule group {wiring.group} does not exist: deploy tf/schedules.tf, or start ./deploy.sh local"
        ) from None
    name = ONE_TIME_PREFIX + str(ULID()).lower()
    api.create_one_time(scheduler, wiring, name=name, at=runs_at, trigger=trigger)
    return Scheduled(name, wiring.group, job_id_for_tick(name, runs_at), runs_at)


def render(result: Delayed | Scheduled) -> str:
    runs_at = result.runs_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(result, Delayed):
        return (
            f"MessageId  {result.message_id}\n"
            f"delayed    {result.delay_seconds}s by SQS DelaySeconds: main_job receives it at {runs_at}\n"
        )
    return (
        f"schedule   {result.schedule_name}  (group {result.group}, one-time, deleted after it fires)\n"
        f"runs at    {runs_at}\n"
        f"jobId      {result.job_id}  (derived from the schedule and its time)\n"
    )


# ---------------------------------------------------------------------------- the command line


def add_arguments(sender: argparse.ArgumentParser) -> None:
    sender.add_argument("--at", metavar="TIME", help="run at this ISO 8601 time (with its offset, e.g. ...Z)")
    sender.add_argument("--in", dest="in_", metavar="DURATION", help="run after this long: 90s, 20m, 2h, 3d")


def wanted(args: argparse.Namespace) -> bool:
    return args.at is not None or args.in_ is not None


def cmd(args: argparse.Namespace, body: str, deployment: Deployment, runtime: Runtime) -> int:
    """The rest of ``fleet send`` once the body is built, when --at or --in was given."""
    if args.wait > 0:
        raise UsageError("--wait cannot be combined with --at or --in: the job runs later")
    if args.queue != "triggers":
        raise UsageError("--at and --in send to the trigger queue only")
    now = datetime.now(UTC)
    runs_at = when(at=args.at, in_=args.in_, now=now)
    clients = runtime.clients
    runtime.out.write(
        render(send_later(clients.sqs, clients.scheduler, deployment.names, body, runs_at=runs_at, now=now))
    )
    return 0
