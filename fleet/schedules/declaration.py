"""The one declaration of the schedules, ``tf/schedules.auto.tfvars.json``, read by Terraform and the fleet.

Terraform loads the file by itself (``*.auto.tfvars.json``) into ``var.schedules``; the local fleet and
the tests load it here. Each entry is checked as strictly as Scheduler and main_job will check it, so a
bad schedule fails ``./deploy.sh test`` rather than ``terraform apply`` or the first tick at 3 am:

- the name ends up in resource names (:data:`common.schedule_tick.SCHEDULE_NAME_PATTERN`);
- ``expression`` and ``timezone`` parse as Scheduler's (:mod:`fleet.schedules.expressions`);
- ``trigger``, with the ``schedule`` field Scheduler's input adds, passes main_job's contract and names
  a job type the background workers run (:func:`fleet.cli.send.validate`, what ``fleet send`` checks);
- unknown keys are refused, so a misspelt ``enabeld`` is not silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from common.schedule_tick import InvalidTick, ScheduledTick, require_schedule_name
from fleet.cli.errors import UsageError
from fleet.cli.send import validate
from fleet.schedules.expressions import Expression, InvalidExpression, parse

DEFAULT_PATH: Final = Path(__file__).resolve().parents[2] / "tf" / "schedules.auto.tfvars.json"
ENV_SCHEDULES_FILE: Final = "FLEET_SCHEDULES_FILE"
_KEYS: Final = frozenset({"expression", "timezone", "trigger", "flexible_window_minutes", "enabled", "description"})
#: Scheduler's limits: FlexibleTimeWindow.MaximumWindowInMinutes 1-1440, Description up to 512 characters.
_MAX_WINDOW_MINUTES: Final = 1440
_MAX_DESCRIPTION: Final = 512
_SAMPLE_TIME: Final = datetime(2026, 1, 1, tzinfo=UTC)
_T = TypeVar("_T")


class InvalidDeclaration(ValueError):
    """The schedules file is wrong; the message names the schedule and the rule."""


@dataclass(frozen=True, slots=True)
class DeclaredSchedule:
    """One validated entry of the ``schedules`` map."""

    name: str
    expression: Expression
    trigger: Mapping[str, Any]
    enabled: bool = True
    flexible_window_minutes: int | None = None
    description: str = ""
    timezone: str = field(default="UTC")

    def input_for(self, tick: ScheduledTick) -> str:
        """The trigger body this schedule sends for ``tick``: what Scheduler's input renders to."""
        return json.dumps({**self.trigger, "schedule": tick.to_document()}, separators=(",", ":"))


def load(path: Path = DEFAULT_PATH) -> list[DeclaredSchedule]:
    """Every schedule in the file, validated; a missing file declares none."""
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidDeclaration(f"{path}: cannot read it as JSON: {error}") from None
    schedules = document.get("schedules", {}) if isinstance(document, dict) else None
    if not isinstance(schedules, dict):
        raise InvalidDeclaration(f"{path}: expected an object with a 'schedules' object")
    return [parse_entry(name, entry) for name, entry in sorted(schedules.items())]


def parse_entry(name: str, entry: object) -> DeclaredSchedule:
    try:
        return _entry(name, entry)
    except (InvalidTick, InvalidExpression, ValueError) as error:
        raise InvalidDeclaration(f"schedule {name!r}: {error}") from None


def _entry(name: str, entry: object) -> DeclaredSchedule:
    require_schedule_name(name)
    if not isinstance(entry, dict):
        raise InvalidDeclaration("must be an object")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    timezone = _typed(entry, "timezone", str, "UTC")
    expression = parse(_typed(entry, "expression", str, None), timezone)
    trigger = _typed(entry, "trigger", dict, None)
    if "schedule" in trigger:
        raise ValueError("trigger must not set 'schedule': the schedule adds it, with the tick's time")
    window = entry.get("flexible_window_minutes")
    if window is not None and (type(window) is not int or not 1 <= window <= _MAX_WINDOW_MINUTES):
        raise ValueError(f"flexible_window_minutes must be a whole number from 1 to {_MAX_WINDOW_MINUTES}")
    description = _typed(entry, "description", str, "")
    if len(description) > _MAX_DESCRIPTION:
        raise ValueError(f"description is longer than {_MAX_DESCRIPTION} characters")
    schedule = DeclaredSchedule(
        name=name,
        expression=expression,
        trigger=trigger,
        enabled=_typed(entry, "enabled", bool, True),
        flexible_window_minutes=window,
        description=description,
        timezone=timezone,
    )
    # What main_job will receive: the trigger plus the tick, checked by main_job's own contract.
    try:
        validate(schedule.input_for(ScheduledTick(name, _SAMPLE_TIME)))
    except UsageError as error:
        raise ValueError("trigger " + str(error).removeprefix("trigger refused, not sent: ")) from None
    return schedule


def _typed(entry: Mapping[str, Any], key: str, kind: type[_T], default: _T | None) -> _T:
    value = entry.get(key, default)
    if value is None:
        raise ValueError(f"'{key}' is required")
    if type(value) is not kind:
        raise ValueError(f"'{key}' must be a {kind.__name__}, got {type(value).__name__}")
    return value
