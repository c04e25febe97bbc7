"""Job IDs are ULIDs derived from the trigger message, so a redelivered trigger keeps its job."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.job_ids import InvalidJobId, is_valid_job_id, job_id_for_message, job_timestamp, require_job_id

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
