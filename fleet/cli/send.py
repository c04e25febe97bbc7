"""``fleet send``: build a trigger, check it against main_job's contract, send it, report its IDs.

The trigger is validated with :func:`common.messages.parse_trigger`, the function main_job itself uses,
so a trigger that main_job would quarantine is refused here with the same reason, before it is sent.
Its jobType must be one the background workers run (``background_job.jobs.REGISTRY``): main_job
accepts any well-formed name, and background_job would quarantine an unknown one, after the fact.
A refused trigger is a usage error (exit status 2): nothing was sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from background_job.jobs import REGISTRY
from common.messages import MalformedMessage, parse_trigger
from fleet.cli.errors import UsageError
from fleet.cli.job_lookup import SendWindow

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True, slots=True)
class Sent:
    """What SendMessage told us, and when (by our clock) it happened."""

    message_id: str
    window: SendWindow


def trigger_from_flags(
    *,
    trigger: str,
    job_type: str | None,
    correlation_id: str | None,
    data: str | None,
    background_job: bool,
    now: datetime,
) -> str:
    """A trigger body from command-line flags; ``data`` is a JSON object given as text."""
    document: dict[str, Any] = {
        "trigger": trigger,
        "timestamp": now.astimezone(UTC).isoformat(timespec="milliseconds"),
        "triggerBackgroundJob": background_job,
    }
    if job_type is not None:
        document["jobType"] = job_type
    if correlation_id is not None:
        document["correlationId"] = correlation_id
    if data is not None:
        try:
            document["data"] = json.loads(data)
        except ValueError as error:
            raise UsageError(f"--data is not valid JSON: {error}") from None
    return json.dumps(document, separators=(",", ":"))


def validate(body: str, known_job_types: Collection[str] = frozenset(REGISTRY)) -> None:
    """Refuse a trigger main_job would quarantine (with its reason), or whose job no worker runs."""
    try:
        trigger = parse_trigger(body)
    except MalformedMessage as error:
        raise UsageError(f"trigger refused, not sent: {error.reason}") from None
    if trigger.trigger_background_job and trigger.job_type not in known_job_types:
        known = ", ".join(sorted(known_job_types))
        raise UsageError(f"trigger refused, not sent: unknown jobType '{trigger.job_type}'; known: {known}")


def send(sqs: SQSClient, queue_url: str, body: str) -> Sent:
    validate(body)
    before = time.time_ns() // 1_000_000
    message_id = sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    after = time.time_ns() // 1_000_000
    return Sent(message_id=message_id, window=SendWindow(before_ms=before, after_ms=after))
