"""Tests for the local supervisor's task-count report (fleet/local/task_counts.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from fleet.local import task_counts


def test_a_report_reads_back_while_its_supervisor_runs(tmp_path):
    """What the supervisor writes is what `fleet top` reads: running and desired per service."""
    path = tmp_path / "tasks.json"
    task_counts.write(path, {"main-job": (1, 1), "background-job": (1, 2)})
    assert {"main-job": (1, 1), "background-job": (1, 2)} == task_counts.read(path)


def test_a_report_whose_supervisor_is_gone_is_ignored(tmp_path):
    """A fleet killed without cleaning up must not show its workers as running."""
    command = [sys.executable, "-c", "import os; print(os.getpid())"]
    gone = subprocess.run(command, check=True, capture_output=True, text=True)
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps({"pid": int(gone.stdout), "services": {"main-job": [1, 1]}}), encoding="utf-8")
    assert task_counts.read(path) is None


def test_no_report_is_none(tmp_path):
    """Without a local fleet there is nothing to show."""
    assert task_counts.read(tmp_path / "missing.json") is None
