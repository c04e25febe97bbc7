"""Job IDs are ULIDs derived from the trigger message (or its schedule tick), so a redelivery keeps its job."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.job_ids import (
    InvalidJobId,
    is_valid_job_id,
    job_id_for_message,
    job_id_for_tick,
    job_timestamp,
    require_job_id,
)

SENT_MS = 1_795_300_000_000


def test_same_message_gives_the_same_job_id() -> None:
    """Redelivery (same MessageId and SentTimestamp) maps to the same job."""
    assert job_id_for_message("msg-1", SENT_MS) == job_id_for_message("msg-1", SENT_MS)


def test_different_messages_give_different_job_ids() -> None:
    """Two triggers sent in the same millisecond still get distinct jobs."""
    assert job_id_for_message("msg-1", SENT_MS) != job_id_for_message("msg-2", SENT_MS)


def test_time_part_is_the_sent_timestamp() -> None:
    """The ULID's time is SentTimestamp, which fixes the job stream's date across retries."""
    job_id = job_id_for_message("msg-1", SENT_MS)

    assert datetime.fromtimestamp(SENT_MS / 1000, tz=UTC) == job_timestamp(job_id)
    assert is_valid_job_id(job_id)


@pytest.mark.parametrize(
    "candidate",
    [
        "01KANG3680B51DJKTJ921E1WM",  # 25 characters
        "01kang3680b51djktj921e1wmv",  # lower case
        "01KANG3680B51DJKTJ921E1W:V",
        "01KANG3680B51DJKTJ921E1W*V",
        "01KANG3680B51DJKTJ921E1/..",
        "81KANG3680B51DJKTJ921E1WMV",  # overflows 48 bits of time
        "01KANG3680B51DJKTJ921E1WMU",  # U is not Crockford base32
        " 01KANG3680B51DJKTJ921E1WMV",
        "",
        None,
        12345,
    ],
)
def test_anything_but_a_canonical_ulid_is_refused(candidate: object) -> None:
    """Only a canonical ULID may become part of a log stream name."""
    assert not is_valid_job_id(candidate)
    with pytest.raises(InvalidJobId):
        require_job_id(candidate)


TICK = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)


def test_every_delivery_of_a_tick_gives_the_same_job_id() -> None:
    """Scheduler may send one tick twice: the job ID depends only on schedule name and scheduled time."""
    assert job_id_for_tick("nightly-report", TICK) == job_id_for_tick("nightly-report", TICK)


def test_tick_job_id_time_part_is_the_scheduled_time() -> None:
    """The ID decodes to the scheduled minute, not to when the message happened to arrive."""
    assert TICK == job_timestamp(job_id_for_tick("nightly-report", TICK))


def test_ticks_of_other_schedules_or_times_are_other_jobs() -> None:
    """Two schedules firing at the same minute, or one schedule's next tick, are distinct jobs."""
    ids = {
        job_id_for_tick("nightly-report", TICK),
        job_id_for_tick("hourly-sync", TICK),
        job_id_for_tick("nightly-report", TICK.replace(minute=1)),
    }
    assert 3 == len(ids)
    assert all(is_valid_job_id(job_id) for job_id in ids)


def test_tick_needs_an_aware_time() -> None:
    """A naive datetime has no instant; refusing it keeps an ID from depending on the host's zone."""
    with pytest.raises(ValueError, match="timezone-aware"):
        job_id_for_tick("nightly-report", TICK.replace(tzinfo=None))
