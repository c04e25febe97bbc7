"""Jobs lost or run twice are counted from the side-effect file, whatever the framework logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.peers.effects import EFFECTS_FILE_ENV, delivery, read_records, run_job


def test_a_job_never_run_is_lost_and_a_job_run_twice_is_counted_once_as_run_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three jobs sent, one run twice, one never run: one lost, one run twice, one extra run."""
    monkeypatch.setenv(EFFECTS_FILE_ENV, str(tmp_path / "effects"))
    for job_id in ("A", "B", "A"):
        run_job(job_id, 0.0)

    records = read_records(tmp_path / "effects")
    outcome = delivery(["A", "B", "C"], records)

    assert ["A", "B", "A"] == [record.job_id for record in records]
    assert (1, 1, 1) == (outcome.lost, outcome.run_twice, outcome.extra_runs)
