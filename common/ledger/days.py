"""The UTC day buckets the ledger's indexes are keyed on, and the job-ID bounds of a time window.

``queuedDay`` is the UTC day of the time in the job ID (a ULID), not of the write: the claim that
creates the item and ``fleet cancel`` of a job not claimed yet compute the same value, so whichever
creates the item sets the right one and the index is written once per job. ``queuedAt`` is that time
itself: main_job, which writes nothing to the ledger, mints the ULID from the trigger's SentTimestamp (a
scheduled trigger: its tick's time), so the ID records when the job was queued, the same on every retry.
``failedDay`` is the UTC day of the write that makes a job ``dead``.

A ULID's first 48 bits are its epoch milliseconds, so the smallest ULID of an instant bounds "jobs
queued since T" as a range on the ``jobId`` sort key of ``by-day``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ulid import ULID

from common.job_ids import is_valid_job_id, job_timestamp

_TIMESTAMP_BYTES = 6
_RANDOM_BYTES = 10


def day_text(moment: datetime) -> str:
    """``YYYY-MM-DD`` of ``moment`` in UTC."""
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


def utc_day(epoch_seconds: float) -> str:
    """``YYYY-MM-DD`` of an epoch instant in UTC."""
    return day_text(datetime.fromtimestamp(epoch_seconds, UTC))


def queued_time(job_id: str, now: float) -> float:
    """When the job was queued, epoch seconds: its ULID's time (``now`` only for an ID that is no ULID)."""
    return job_timestamp(job_id).timestamp() if is_valid_job_id(job_id) else now


def queued_day(job_id: str, now: float) -> str:
    """The ``by-day`` bucket of a job: its ULID's UTC day (``now``'s only for an ID that is no ULID)."""
    return utc_day(queued_time(job_id, now))


def first_job_id_at(moment: datetime) -> str:
    """The smallest ULID of ``moment`` (to the millisecond): every job ID from then on sorts at or after it."""
    millis = max(0, int(moment.timestamp() * 1000))
    return str(ULID.from_bytes(millis.to_bytes(_TIMESTAMP_BYTES, "big") + bytes(_RANDOM_BYTES)))


def days_in(start: datetime, end: datetime) -> list[str]:
    """Every UTC day from ``start``'s to ``end``'s, oldest first (one index partition each)."""
    first: date = start.astimezone(UTC).date()
    last: date = end.astimezone(UTC).date()
    return [f"{first + timedelta(days=offset):%Y-%m-%d}" for offset in range((last - first).days + 1)]
