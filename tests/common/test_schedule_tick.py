"""A schedule tick: Scheduler's scheduled-time format and the schedule-name rule, checked once for every producer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from common.schedule_tick import (
    SCHEDULED_TIME_PLACEHOLDER,
    InvalidTick,
    ScheduledTick,
    format_scheduled_time,
    parse_scheduled_time,
    require_schedule_name,
    tick_from_document,
)


def test_scheduled_time_round_trips_in_schedulers_format() -> None:
    """2022-03-22T18:59:43Z, the documented form of <aws.scheduler.scheduled-time>, parses and formats back."""
    assert "2022-03-22T18:59:43Z" == format_scheduled_time(parse_scheduled_time("2022-03-22T18:59:43Z"))


def test_a_time_in_another_zone_is_written_in_utc() -> None:
    """The tick is one instant: it is always rendered in UTC, whatever zone it was built in."""
    paris = datetime(2026, 12, 4, 15, 0, tzinfo=timezone(timedelta(hours=1)))

    assert "2026-12-04T14:00:00Z" == ScheduledTick("nightly", paris).scheduled_time_text


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (SCHEDULED_TIME_PLACEHOLDER, "unsubstituted"),
        ("2026-12-04T14:00:00+01:00", "must be a UTC time"),
        ("2026-12-04T14:00:00.000Z", "must be a UTC time"),
        (1733320800, "must be a UTC time"),
        ("2026-13-01T00:00:00Z", "is not a real time"),
    ],
)
def test_anything_but_schedulers_time_is_refused(value: object, reason: str) -> None:
    """A tick time decides the job ID: only the exact form Scheduler sends is accepted."""
    with pytest.raises(InvalidTick, match=reason):
        parse_scheduled_time(value)


@pytest.mark.parametrize("name", ["nightly-report", "a", "a" + "b" * 62])
def test_lower_case_names_up_to_63_characters_are_accepted(name: str) -> None:
    """The rule leaves room within Scheduler's 64-character limit."""
    assert name == require_schedule_name(name)


@pytest.mark.parametrize("name", ["", "Nightly", "1st", "a_b", "a.b", "a" * 64, None, "a/b"])
def test_names_that_cannot_be_resource_names_are_refused(name: object) -> None:
    """Upper case, dots, underscores, slashes, a leading digit and 64+ characters are refused."""
    with pytest.raises(InvalidTick, match="schedule name must match"):
        require_schedule_name(name)


def test_the_schedule_field_becomes_a_tick() -> None:
    """{"name", "scheduledTime"} as Terraform's input renders it."""
    tick = tick_from_document({"name": "nightly", "scheduledTime": "2026-12-04T02:00:00Z"})

    assert ScheduledTick("nightly", datetime(2026, 12, 4, 2, 0, tzinfo=UTC)) == tick
    assert {"name": "nightly", "scheduledTime": "2026-12-04T02:00:00Z"} == tick.to_document()
