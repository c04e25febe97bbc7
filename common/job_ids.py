"""Job IDs: ULIDs derived deterministically from the trigger message.

SQS delivers at least once, so the same trigger can reach main_job twice (a crash between the send
and the delete, an expired visibility timeout). Deriving the ID from the message itself, with the
time part from ``SentTimestamp`` and the random part from a hash of ``MessageId``, gives both
deliveries the same job ID: the same log stream, and a duplicate that is visible rather than a
second, unrelated job. The result is still a valid, time-sortable ULID.

A scheduled trigger is different: Scheduler may send one tick as two messages, so its ID comes from
the schedule name and the scheduled time instead (:func:`job_id_for_tick`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Final

from ulid import ULID

_ULID_PATTERN: Final = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_TIMESTAMP_BYTES: Final = 6
_RANDOM_BYTES: Final = 10


class InvalidJobId(ValueError):
    """A job ID that is not a canonical ULID; it must never reach a resource name."""


def job_id_for_message(message_id: str, sent_timestamp_ms: int) -> str:
    """Return the job ID for the trigger with this SQS ``MessageId`` and ``SentTimestamp``."""
    if not message_id:
        raise ValueError("message_id must not be empty")
    if not 0 <= sent_timestamp_ms < 2 ** (8 * _TIMESTAMP_BYTES):
        raise ValueError(f"sent_timestamp_ms out of range: {sent_timestamp_ms}")
    time_part = sent_timestamp_ms.to_bytes(_TIMESTAMP_BYTES, "big")
    random_part = hashlib.sha256(message_id.encode("utf-8")).digest()[:_RANDOM_BYTES]
    return str(ULID.from_bytes(time_part + random_part))


def job_id_for_tick(schedule_name: str, scheduled_time: datetime) -> str:
    """Return the job ID for one tick of a schedule: the same for every delivery of that tick.

    The time part is the scheduled time (not when SQS got the message), so the ID decodes to the tick;
    the random part hashes the schedule name and the time, so two schedules firing at once differ.
    """
    if not schedule_name:
        raise ValueError("schedule_name must not be empty")
    if scheduled_time.tzinfo is None:
        raise ValueError("scheduled_time must be timezone-aware")
    instant_ms = int(scheduled_time.timestamp() * 1000)
    if not 0 <= instant_ms < 2 ** (8 * _TIMESTAMP_BYTES):
        raise ValueError(f"scheduled_time out of range: {scheduled_time.isoformat()}")
    seed = f"schedule\n{schedule_name}\n{instant_ms}".encode()
    random_part = hashlib.sha256(seed).digest()[:_RANDOM_BYTES]
    return str(ULID.from_bytes(instant_ms.to_bytes(_TIMESTAMP_BYTES, "big") + random_part))


def is_valid_job_id(value: object) -> bool:
    """True for a canonical upper-case ULID: 26 Crockford base32 characters, nothing else."""
    return isinstance(value, str) and _ULID_PATTERN.fullmatch(value) is not None


def require_job_id(value: object) -> str:
    if not is_valid_job_id(value):
        raise InvalidJobId("jobId must be a 26-character upper-case ULID")
    return str(value)


def job_timestamp(job_id: str) -> datetime:
    """The UTC instant encoded in the ULID, which fixes the job's log-stream date across retries."""
    return ULID.from_str(require_job_id(job_id)).datetime.astimezone(UTC)
