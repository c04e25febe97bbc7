"""``fleet schedules``: every schedule of the deployment's group with its next fire time; pause and resume.

Reads EventBridge Scheduler (ListSchedules, then GetSchedule for the expression); next fire times are
computed by Scheduler's expression rules (:mod:`fleet.schedules.expressions`), since the API does not
return them. Triggers delayed with SQS DelaySeconds (``fleet send --in`` under 15 minutes) are not
schedules; their count, from the trigger queue, is shown below the table.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from common.names import FleetNames
from fleet.cli.errors import OpsError
from fleet.cli.queues import resolve
from fleet.cli.render import table
from fleet.cli.send_later import ONE_TIME_PREFIX
from fleet.schedules import api
from fleet.schedules.expressions import InvalidExpression, parse

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from fleet.cli.cli import Runtime
    from fleet.cli.deployment import Deployment

PAUSED = "DISABLED"
RUNNING = "ENABLED"


@dataclass(frozen=True, slots=True)
class ScheduleView:
    name: str
    state: str
    expression: str
    timezone: str
    next_fire: str | None
    description: str


@dataclass(frozen=True, slots=True)
class Listing:
    group: str
    schedules: list[ScheduleView]
    delayed_triggers: int


def collect(sqs: SQSClient, scheduler: Any, names: FleetNames, *, now: datetime) -> Listing:  # noqa: ANN401
    group = names.schedule_group
    try:
        described = api.describe_all(scheduler, group)
    except scheduler.exceptions.ResourceNotFoundException:
        raise OpsError(
            f"schedule group {group} does not exist: deploy tf/schedules.tf, or start ./deploy.sh local"
        ) from None
    queue = resolve(sqs, names, "triggers")
    delayed = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    return Listing(
        group=group,
        schedules=[_view(schedule, now) for schedule in described],
        delayed_triggers=int(delayed["Attributes"].get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def _view(schedule: dict[str, Any], now: datetime) -> ScheduleView:
    timezone = str(schedule.get("ScheduleExpressionTimezone") or "UTC")
    state = str(schedule.get("State", "?"))
    try:
        expression = parse(str(schedule["ScheduleExpression"]), timezone)
    except InvalidExpression:
        due = None
    else:
        anchor = schedule.get("StartDate") or schedule.get("CreationDate")
        due = expression.next_after(now, anchor=anchor if isinstance(anchor, datetime) else None)
    return ScheduleView(
        name=str(schedule["Name"]),
        state=state,
        expression=str(schedule["ScheduleExpression"]),
        timezone=timezone,
        next_fire=due.strftime("%Y-%m-%dT%H:%M:%SZ") if due is not None and state == RUNNING else None,
        description=str(schedule.get("Description", "")),
    )


def render(listing: Listing) -> str:
    lines = [f"schedule group {listing.group}"]
    if listing.schedules:
        rows = [
            [s.name, "paused" if s.state == PAUSED else s.state.lower(), s.expression, s.timezone, s.next_fire or "-"]
            for s in listing.schedules
        ]
        lines.append(table(["NAME", "STATE", "EXPRESSION", "TIME ZONE", "NEXT FIRE (UTC)"], rows).rstrip("\n"))
    else:
        lines.append("no schedules")
    lines.append(f"{listing.delayed_triggers} trigger(s) delayed in the trigger queue (SQS DelaySeconds)")
    return "\n".join(lines) + "\n"


def to_json(listing: Listing) -> str:
    return json.dumps(asdict(listing), indent=2) + "\n"


def set_state(scheduler: Any, names: FleetNames, name: str, state: str) -> str:  # noqa: ANN401
    """Pause (DISABLED) or resume (ENABLED) one schedule; the line to print."""
    try:
        before = api.set_state(scheduler, names.schedule_group, name, state)
    except scheduler.exceptions.ResourceNotFoundException:
        raise OpsError(f"no schedule {name} in group {names.schedule_group} (fleet schedules lists them)") from None
    verb = "paused" if state == PAUSED else "resumed"
    line = f"{verb} {name} (was {str(before.get('State', '?')).lower()})\n"
    if not name.startswith(ONE_TIME_PREFIX):
        line += (
            "note: terraform apply restores the state declared in tf/schedules.auto.tfvars.json; "
            "change 'enabled' there to make this last\n"
        )
    return line


# ---------------------------------------------------------------------------- the command line


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``fleet schedules [--json]``, ``fleet schedules pause NAME``, ``fleet schedules resume NAME``."""
    listing = commands.add_parser("schedules", help="schedules with their next fire time; pause or resume one")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(command=cmd_list)
    actions = listing.add_subparsers(title="schedules commands", metavar="COMMAND")
    for verb, state in (("pause", PAUSED), ("resume", RUNNING)):
        action = actions.add_parser(verb, help=f"{verb} one schedule (state {state})")
        action.add_argument("name", metavar="NAME")
        action.set_defaults(command=cmd_set_state, state=state)


def cmd_list(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    clients = runtime.clients
    listing = collect(clients.sqs, clients.scheduler, deployment.names, now=datetime.now(UTC))
    runtime.out.write(to_json(listing) if args.json else render(listing))
    return 0


def cmd_set_state(args: argparse.Namespace, deployment: Deployment, runtime: Runtime) -> int:
    runtime.out.write(set_state(runtime.clients.scheduler, deployment.names, args.name, args.state))
    return 0
