"""Scheduler's at(), rate() and cron() expressions: parsing by AWS's rules, and the next fire time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet.schedules.expressions import InvalidExpression, parse

#: A Friday.
NOW = datetime(2026, 12, 4, 14, 37, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "timezone", "expected"),
    [
        ("rate(1 minute)", "UTC", datetime(2026, 12, 4, 14, 38, tzinfo=UTC)),
        ("cron(0 2 * * ? *)", "Europe/London", datetime(2026, 12, 5, 2, 0, tzinfo=UTC)),
        ("cron(0 2 * * ? *)", "Europe/Paris", datetime(2026, 12, 5, 1, 0, tzinfo=UTC)),
        ("cron(0 9 ? * MON-FRI *)", "America/New_York", datetime(2026, 12, 7, 14, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", "UTC", datetime(2026, 12, 4, 14, 45, tzinfo=UTC)),
        ("cron(0 0 L * ? *)", "UTC", datetime(2026, 12, 31, 0, 0, tzinfo=UTC)),
        ("cron(0 0 ? * 6#3 *)", "UTC", datetime(2026, 12, 18, 0, 0, tzinfo=UTC)),
        ("cron(15 10 ? * 6L 2026-2027)", "UTC", datetime(2026, 12, 25, 10, 15, tzinfo=UTC)),
        ("cron(0 8 1W * ? *)", "UTC", datetime(2027, 1, 1, 8, 0, tzinfo=UTC)),
        ("at(2026-12-05T10:00:00)", "Europe/Paris", datetime(2026, 12, 5, 9, 0, tzinfo=UTC)),
    ],
)
def test_next_fire_time_follows_scheduler_rules(expression: str, timezone: str, expected: datetime) -> None:
    """Day-of-week counts from SUN=1, L/W/# as documented, and wall-clock times are in the schedule's zone."""
    assert expected == parse(expression, timezone).next_after(NOW)


def test_a_past_at_or_year_has_no_next_time() -> None:
    """A one-time schedule that has fired, or a cron limited to past years, never fires again."""
    assert parse("at(2026-12-04T14:00:00)").next_after(NOW) is None
    assert parse("cron(0 0 * * ? 2025)").next_after(NOW) is None


def test_rate_counts_from_its_start_truncated_to_the_minute() -> None:
    """A rate's ticks are start + n x period, so each tick is a whole minute."""
    start = datetime(2026, 12, 4, 14, 0, 30, tzinfo=UTC)

    assert datetime(2026, 12, 4, 14, 40, tzinfo=UTC) == parse("rate(5 minutes)").next_after(NOW, anchor=start)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(2 minute)",
        "rate(1 weeks)",
        "cron(0 2 * * *)",
        "cron(0 2 ? * ? *)",
        "cron(60 2 * * ? *)",
        "cron(0 2 * 13 ? *)",
        "cron(0 2 ? * 8 *)",
        "cron(0 2 ? * 2#6 *)",
        "at(2026-02-30T10:00:00)",
        "at(2026-12-05 10:00)",
    ],
)
def test_expressions_scheduler_refuses_are_refused(expression: str) -> None:
    """Whatever Scheduler's CreateSchedule would reject is rejected before deploy."""
    with pytest.raises(InvalidExpression):
        parse(expression)
