"""EventBridge Scheduler's schedule expressions, ``at()``, ``rate()`` and ``cron()``, and their next fire times.

The rules are Scheduler's documented ones ("Schedule types on EventBridge Scheduler"):

- ``at(yyyy-mm-ddThh:mm:ss)``: once, at that wall-clock time in the schedule's time zone.
- ``rate(value unit)``: unit ``minute(s)``, ``hour(s)`` or ``day(s)``; singular exactly when value is 1.
- ``cron(minutes hours day-of-month month day-of-week year)``: six fields; ``day-of-week`` counts 1-7 from
  SUN; one of the two day fields must be ``?``; ``L``, ``W`` and ``#`` as documented. Evaluated in the
  schedule's time zone.

The fleet uses them to validate the declaration file (so a typo fails ``./deploy.sh test``, not
``terraform apply``), to show next fire times (``fleet schedules``) and to fire ticks locally. A rate
schedule's ticks are counted from its start (its StartDate, else its creation) truncated to the minute.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_AT: Final = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_RATE: Final = re.compile(r"rate\((\d+) (minutes?|hours?|days?)\)")
_CRON: Final = re.compile(r"cron\(([^()]+)\)")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS: Final = {name: index for index, name in enumerate(calendar.month_abbr) if name}
_DAYS: Final = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
#: How far ahead a cron's next time is looked for; a cron with no time in it (a past year) has none.
_SEARCH_DAYS: Final = 366 * 5


class InvalidExpression(ValueError):
    """A schedule expression or time zone Scheduler would refuse; the message says which rule."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MINUTE = _Field("minutes", 0, 59, {})
_HOUR = _Field("hours", 0, 23, {})
_DOM = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, {name.upper(): index for name, index in _MONTHS.items()})
_DOW = _Field("day-of-week", 1, 7, _DAYS)
_YEAR = _Field("year", 1970, 2199, {})

DayRule = Callable[[date], bool]


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression; :meth:`next_after` gives the first fire time strictly after an instant."""

    text: str
    zone: ZoneInfo
    kind: str
    at: datetime | None = None
    rate: timedelta | None = None
    cron: _Cron | None = None

    def next_after(self, after: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The next fire time (UTC) strictly after ``after``; ``anchor`` starts a rate's count."""
        if self.at is not None:
            return self.at if self.at > after else None
        if self.rate is not None:
            return _next_rate(self.rate, after, anchor or after)
        assert self.cron is not None  # noqa: S101 - one of the three is always set
        return self.cron.next_after(after, self.zone)


@dataclass(frozen=True, slots=True)
class _Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day: DayRule

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        start = after.astimezone(zone).date()
        for offset in range(_SEARCH_DAYS):
            day = start + timedelta(days=offset)
            if day.year not in self.years or day.month not in self.months or not self.day(day):
                continue
            for hour in self.hours:
                for minute in self.minutes:
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)
                    if moment > after:
                        return moment
        return None


def parse(text: str, timezone: str = "UTC") -> Expression:
    """Parse ``text`` in ``timezone`` (an IANA name), or raise :class:`InvalidExpression`."""
    zone = parse_zone(timezone)
    if match := _AT.fullmatch(text):
        try:
            local = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise InvalidExpression(f"{text}: not a real date and time") from None
        return Expression(text, zone, "at", at=local.replace(tzinfo=zone).astimezone(UTC))
    if match := _RATE.fullmatch(text):
        return Expression(text, zone, "rate", rate=_rate(text, int(match.group(1)), match.group(2)))
    if match := _CRON.fullmatch(text):
        return Expression(text, zone, "cron", cron=_cron(text, match.group(1)))
    raise InvalidExpression(f"{text!r}: expected at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(six fields)")


def parse_zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidExpression(f"unknown time zone {timezone!r}: use an IANA name such as Europe/Paris") from None


def _rate(text: str, value: int, unit: str) -> timedelta:
    singular = unit.rstrip("s")
    if value < 1:
        raise InvalidExpression(f"{text}: the value must be a positive whole number")
    if (value == 1) != (unit == singular):
        raise InvalidExpression(f"{text}: use '1 {singular}' for one, '{value} {singular}s' for more")
    return timedelta(seconds=value * _UNIT_SECONDS[singular])


def _next_rate(period: timedelta, after: datetime, anchor: datetime) -> datetime:
    start = anchor.astimezone(UTC).replace(second=0, microsecond=0)
    if start > after:
        return start
    elapsed = (after - start) // period
    return start + (elapsed + 1) * period


def _cron(text: str, body: str) -> _Cron:
    fields = body.split()
    if len(fields) != 6:
        raise InvalidExpression(f"{text}: expected 6 fields (minutes hours day-of-month month day-of-week year)")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise InvalidExpression(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
    try:
        day = _dom_rule(dom) if dow == "?" else _dow_rule(dow)
        return _Cron(
            minutes=tuple(sorted(_values(minute, _MINUTE))),
            hours=tuple(sorted(_values(hour, _HOUR))),
            months=frozenset(_values(month, _MONTH)),
            years=frozenset(_values(year, _YEAR)),
            day=day,
        )
    except InvalidExpression as error:
        raise InvalidExpression(f"{text}: {error}") from None


def _values(text: str, field: _Field) -> set[int]:
    """A field of numbers, names, ranges, ``*`` and ``/`` steps, as the set of values it selects."""
    selected: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = _number(step_text, field, allow_range=False) if step_text else 1
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _number(first, field), _number(last, field)
        else:
            low = _number(base, field)
            high = field.high if step_text else low
        if low > high or step < 1:
            raise InvalidExpression(f"{field.name}: {item!r} selects nothing")
        selected.update(range(low, high + 1, step))
    return selected


def _number(text: str, field: _Field, *, allow_range: bool = True) -> int:
    if text.upper() in field.names:
        return field.names[text.upper()]
    if not text.isdigit():
        raise InvalidExpression(f"{field.name}: {text!r} is not a number or name")
    value = int(text)
    if allow_range and not field.low <= value <= field.high:
        raise InvalidExpression(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _dom_rule(text: str) -> DayRule:
    if text == "L":
        return lambda day: day.day == calendar.monthrange(day.year, day.month)[1]
    if text.endswith("W") and text[:-1].isdigit():
        target = _number(text[:-1], _DOM)
        return lambda day: day == _nearest_weekday(day.year, day.month, target)
    days = _values(text, _DOM)
    return lambda day: day.day in days


def _nearest_weekday(year: int, month: int, target: int) -> date:
    """``nW``: the weekday nearest to day n, never leaving the month."""
    last = calendar.monthrange(year, month)[1]
    wanted = date(year, month, min(target, last))
    if wanted.weekday() == 5:  # Saturday: Friday, unless that is last month
        return wanted - timedelta(days=1) if wanted.day > 1 else wanted + timedelta(days=2)
    if wanted.weekday() == 6:  # Sunday: Monday, unless that is next month
        return wanted + timedelta(days=1) if wanted.day < last else wanted - timedelta(days=2)
    return wanted


def _aws_weekday(day: date) -> int:
    """Scheduler counts SUN=1 ... SAT=7; Python MON=0 ... SUN=6."""
    return (day.weekday() + 1) % 7 + 1


def _dow_rule(text: str) -> DayRule:
    if "#" in text:
        weekday_text, _, nth_text = text.partition("#")
        weekday, nth = _number(weekday_text, _DOW), int(nth_text) if nth_text.isdigit() else 0
        if not 1 <= nth <= 5:
            raise InvalidExpression(f"day-of-week: {text!r} needs #1 to #5")
        return lambda day: _aws_weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth
    if text.endswith("L") and len(text) > 1:
        weekday = _number(text[:-1], _DOW)
        return lambda day: _aws_weekday(day) == weekday and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    if text == "L":
        return lambda day: _aws_weekday(day) == 7
    days = _values(text, _DOW)
    return lambda day: _aws_weekday(day) in days
