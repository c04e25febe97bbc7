"""The container health check tells a turning worker loop from a stuck one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common import health


def test_fresh_heartbeat_is_healthy(tmp_path: Path) -> None:
    """A file touched within the limit means the loop is turning."""
    beat = tmp_path / "w.heartbeat"
    health.Liveness(str(beat)).touch()

    assert health.check([beat], max_age_seconds=90, now=beat.stat().st_mtime + 10)[0]


def test_stale_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    """A loop that stopped touching its file is reported, with the age."""
    beat = tmp_path / "w.heartbeat"
    health.Liveness(str(beat)).touch()

    healthy, detail = health.check([beat], max_age_seconds=90, now=beat.stat().st_mtime + 300)

    assert not healthy
    assert "last touched 300s ago" in detail


def test_missing_heartbeat_is_unhealthy_and_the_command_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m common.health`` exits 1 when the worker never started its loop."""
    monkeypatch.setenv("HEARTBEAT_FILE", str(tmp_path / "never-written"))

    assert 1 == health.main()


def test_command_exits_zero_for_a_live_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ECS and Docker health checks run exactly this."""
    beat = tmp_path / "w.heartbeat"
    beat.touch()
    os.utime(beat)
    monkeypatch.setenv("HEARTBEAT_FILE", str(beat))

    assert 0 == health.main()


def test_a_worker_that_reports_a_problem_is_unhealthy_until_it_clears_it(tmp_path: Path) -> None:
    """A turning loop with a stuck job slot writes why; the next clean touch makes it healthy again."""
    beat = tmp_path / "w.heartbeat"
    liveness = health.Liveness(str(beat))

    liveness.touch(problem="unhealthy: a job slot held 70s past its deadline")
    reported = health.check([beat], max_age_seconds=90, now=beat.stat().st_mtime)
    liveness.touch()
    cleared = health.check([beat], max_age_seconds=90, now=beat.stat().st_mtime)

    assert (False, "unhealthy: a job slot held 70s past its deadline") == reported
    assert cleared[0]
