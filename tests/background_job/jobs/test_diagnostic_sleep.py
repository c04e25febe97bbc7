"""diagnostic-sleep's run counter: the side effect the reliability scenarios count runs by."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from background_job.jobs import diagnostic_sleep
from background_job.jobs.diagnostic_sleep import ENV_EFFECTS_FILE


class _Context:
    """Only what diagnostic-sleep reads from a JobContext."""

    def __init__(self, job_id: str, data: dict[str, object]) -> None:
        self.job_id = job_id
        self.data = data
        self.cancelled = threading.Event()
        self.log = _Log()

    def progress(self, value: float, note: str = "") -> None:
        return

    def time_left(self) -> float:
        return 3600.0


class _Log:
    def info(self, event: str, **fields: object) -> None:
        return


def test_each_finished_run_appends_its_job_id_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of one job leave two lines: runs are counted, not log lines."""
    effects = tmp_path / "effects"
    monkeypatch.setenv(ENV_EFFECTS_FILE, str(effects))
    diagnostic_sleep.run(_Context("job-a", {"seconds": 0}))  # type: ignore[arg-type]
    diagnostic_sleep.run(_Context("job-a", {"seconds": 0}))  # type: ignore[arg-type]
    diagnostic_sleep.run(_Context("job-b", {"seconds": 0}))  # type: ignore[arg-type]
    assert ["job-a", "job-a", "job-b"] == effects.read_text().split()


def test_without_the_variable_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The effect file is operator configuration: unset, the job writes nothing anywhere."""
    monkeypatch.delenv(ENV_EFFECTS_FILE, raising=False)
    monkeypatch.chdir(tmp_path)
    diagnostic_sleep.run(_Context("job-a", {"seconds": 0}))  # type: ignore[arg-type]
    assert [] == list(tmp_path.iterdir())
