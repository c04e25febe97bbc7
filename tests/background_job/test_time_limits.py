"""Each job type's time limit: its module's TIMEOUT_SECONDS, else JOB_TIMEOUT_SECONDS, checked at start."""

from __future__ import annotations

import types

import pytest

from background_job.api import JobContext
from background_job.jobs import REGISTRY
from background_job.time_limits import time_limits
from common.names import BACKGROUND_JOB_SERVICE
from common.settings import ConfigError, Settings

SETTINGS = Settings(service=BACKGROUND_JOB_SERVICE, job_timeout_seconds=120.0, visibility_timeout_seconds=60)


def _job_module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: object) -> types.ModuleType:
    """A job module as a user writes one: a run function and, maybe, its TIMEOUT_SECONDS."""
    module = types.ModuleType(name)

    def run(job: JobContext) -> None:
        del job

    run.__module__ = name
    module.run = run  # type: ignore[attr-defined]
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(__import__("sys").modules, name, module)
    return module


def test_a_job_type_without_a_limit_of_its_own_gets_the_worker_s_default() -> None:
    """The shipped job types declare none: all of them run under JOB_TIMEOUT_SECONDS."""
    assert {job_type: 120.0 for job_type in REGISTRY} == time_limits(REGISTRY, SETTINGS)


def test_a_job_type_s_own_timeout_seconds_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """TIMEOUT_SECONDS beside run() is that job type's limit."""
    module = _job_module(monkeypatch, "jobs_under_test.report", TIMEOUT_SECONDS=30)

    assert {"report": 30.0} == time_limits({"report": module.run}, SETTINGS)


@pytest.mark.parametrize("declared", [0, -5, "30", True, 43_200])
def test_a_limit_the_heartbeat_cannot_cover_stops_the_worker_naming_the_module(
    monkeypatch: pytest.MonkeyPatch, declared: object
) -> None:
    """Not a positive number within SQS's 12-hour visibility cap (less the timeout): config.invalid at start."""
    module = _job_module(monkeypatch, "jobs_under_test.bad", TIMEOUT_SECONDS=declared)

    with pytest.raises(ConfigError, match=r"jobs_under_test\.bad\.TIMEOUT_SECONDS"):
        time_limits({"bad": module.run}, SETTINGS)
