"""The UTC day buckets of the ledger's indexes and the job-ID bound of a window (common/ledger/days.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from common.job_ids import job_id_for_message
from common.ledger.days import days_in, first_job_id_at, queued_day, utc_day

MIDNIGHT = datetime(2026, 12, 4, tzinfo=UTC)


def _job_id_at(moment: datetime, message: str = "m") -> str:
    return job_id_for_message(message, int(moment.timestamp() * 1000))


def test_queued_day_is_the_utc_day_of_the_job_ids_time_not_of_the_write():
    """A job queued a millisecond before midnight is in that day's bucket whenever it is written."""
    job_id = _job_id_at(MIDNIGHT - timedelta(milliseconds=1))
    assert "2026-12-03" == queued_day(job_id, now=(MIDNIGHT + timedelta(hours=30)).timestamp())


def test_an_id_that_is_no_ulid_falls_back_to_the_day_of_the_write():
    """Only a ULID has a time; anything else is bucketed where its first write put it."""
    assert "2026-12-04" == queued_day("not-a-ulid", now=(MIDNIGHT + timedelta(hours=1)).timestamp())


def test_utc_day_ignores_the_local_zone():
    """An instant is bucketed by its UTC date."""
    evening_in_new_york = datetime(2026, 12, 3, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert "2026-12-04" == utc_day(evening_in_new_york.timestamp())


def test_every_job_id_from_an_instant_on_sorts_at_or_after_its_first_job_id():
    """The smallest ULID of T bounds "queued since T": IDs of T and later sort after it, earlier ones before."""
    since = MIDNIGHT + timedelta(minutes=5)
    bound = first_job_id_at(since)
    assert _job_id_at(since, "a") >= bound
    assert _job_id_at(since + timedelta(milliseconds=1), "b") > bound
    assert _job_id_at(since - timedelta(milliseconds=1), "c") < bound


def test_days_in_lists_each_utc_day_of_a_window_once():
    """A window across midnight spans two partitions; one inside a day spans one."""
    assert ["2026-12-03", "2026-12-04"] == days_in(MIDNIGHT - timedelta(minutes=5), MIDNIGHT + timedelta(minutes=1))
    assert ["2026-12-04"] == days_in(MIDNIGHT + timedelta(hours=1), MIDNIGHT + timedelta(hours=2))
