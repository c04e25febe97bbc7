"""The schedules declaration: the shipped file is valid, and a bad schedule fails here, not at 3 am."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.messages import parse_trigger
from common.schedule_tick import ScheduledTick
from fleet.schedules.declaration import DEFAULT_PATH, InvalidDeclaration, load, parse_entry

GOOD: dict[str, Any] = {
    "expression": "rate(1 minute)",
    "timezone": "UTC",
    "trigger": {"trigger": "heartbeat", "jobType": "main-job-processing"},
}


def test_shipped_declaration_is_valid_and_its_example_is_disabled() -> None:
    """tf/schedules.auto.tfvars.json passes every check, and its example does not run until enabled."""
    schedules = load(DEFAULT_PATH)

    assert schedules
    assert [] == [s.name for s in schedules if s.name.startswith("example-") and s.enabled]


def test_every_declared_schedule_sends_a_trigger_main_job_accepts() -> None:
    """What each schedule sends (trigger plus tick) parses with main_job's own contract."""
    for schedule in load(DEFAULT_PATH):
        tick = ScheduledTick(schedule.name, datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
        assert tick == parse_trigger(schedule.input_for(tick)).schedule


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({**GOOD, "trigger": {"trigger": 7}}, "field 'trigger' must be a string, got number"),
        ({**GOOD, "trigger": {"trigger": "t", "data": "x"}}, "field 'data' must be an object"),
        ({**GOOD, "trigger": {"trigger": "t", "jobType": "no-such-job"}}, "unknown jobType 'no-such-job'"),
        ({**GOOD, "trigger": {"trigger": "t", "schedule": {}}}, "must not set 'schedule'"),
        ({**GOOD, "expression": "rate(1 minutes)"}, "use '1 minute' for one"),
        ({**GOOD, "expression": "cron(0 2 * * * *)"}, "exactly one of day-of-month and day-of-week must be '?'"),
        ({**GOOD, "expression": "every day"}, "expected at(yyyy-mm-ddThh:mm:ss)"),
        ({**GOOD, "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({**GOOD, "flexible_window_minutes": 0}, "flexible_window_minutes must be a whole number from 1 to 1440"),
        ({**GOOD, "enabeld": True}, "unknown keys ['enabeld']"),
        ({**GOOD, "enabled": "yes"}, "'enabled' must be a bool"),
        ({"expression": "rate(1 minute)"}, "'trigger' is required"),
    ],
)
def test_a_bad_schedule_is_refused_with_its_name_and_reason(entry: dict[str, Any], reason: str) -> None:
    """Each rule names the schedule and what to fix; a trigger main_job would quarantine is one of them."""
    with pytest.raises(InvalidDeclaration) as caught:
        parse_entry("nightly", entry)

    assert str(caught.value).startswith("schedule 'nightly': ")
    assert reason in str(caught.value)


@pytest.mark.parametrize("name", ["Nightly", "-x", "a_b", "x" * 64, ""])
def test_a_name_that_cannot_be_a_resource_name_is_refused(name: str) -> None:
    """Names end up in AWS resource names: only [a-z][a-z0-9-]{0,62}."""
    with pytest.raises(InvalidDeclaration, match="schedule name must match"):
        parse_entry(name, GOOD)


def test_a_missing_file_declares_no_schedules(tmp_path: Path) -> None:
    """A deployment without schedules needs no file."""
    assert [] == load(tmp_path / "absent.json")


def test_a_file_that_is_not_a_schedules_object_is_refused(tmp_path: Path) -> None:
    """Broken JSON, or a 'schedules' that is not an object, is one clear error."""
    path = tmp_path / "schedules.auto.tfvars.json"
    path.write_text(json.dumps({"schedules": []}), encoding="utf-8")

    with pytest.raises(InvalidDeclaration, match="expected an object with a 'schedules' object"):
        load(path)
