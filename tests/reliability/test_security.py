"""Security checks in the suite: ruff's bandit rules stay clean, and no credential ever reaches a log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_SECRET_ACCESS_KEY
from tests.reliability.harness import WorkerProcess, running_fleet
from tests.reliability.report import record
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["common", "main_job", "background_job"]


def test_bandit_rules_are_clean_on_the_packages() -> None:
    """ruff's S (flake8-bandit) rules, as configured in pyproject.toml, report nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "S", "--output-format", "concise", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode, result.stdout + result.stderr


def test_worker_logs_never_contain_the_secret_key_even_at_debug_level() -> None:
    """Both services at LOG_LEVEL=DEBUG, through faults, failures and bad input: the key is never written."""
    with running_fleet("secrets", background_workers=0) as fleet:
        env = fleet.worker_env(LOG_LEVEL="DEBUG", AWS_SECRET_ACCESS_KEY=TEST_SECRET_ACCESS_KEY)
        workers = [WorkerProcess.start(module, env) for module in ("main_job", "background_job")]
        try:
            fleet.set_faults([{"operation": "*", "kind": "unavailable", "rate": 0.1}])
            fleet.send(
                "trigger",
                [
                    json.dumps({"trigger": "secret-check", "data": {"userId": "u"}}),
                    json.dumps({"trigger": "secret-check", "jobType": "diagnostic-fail"}),
                    '{"trigger": 1}',
                ],
            )
            fleet.send("background", ['{"jobId": "../../secret"}'])
            wait_until(lambda: workers[1].events("job.succeeded"), timeout=30, what="a job to succeed")
            wait_until(lambda: workers[1].events("job.failed"), timeout=30, what="a job to fail")
            wait_until(lambda: workers[1].events("message.quarantined"), timeout=30, what="a quarantine")
            fleet.set_faults([])
            codes = [worker.stop() for worker in workers]
        finally:
            for worker in workers:
                worker.kill()

    captured = "".join(line for worker in workers for line in worker.output)
    record("no_secret_in_logs", worker_lines=captured.count("\n"), exit_codes=codes)
    assert [0, 0] == codes
    assert captured.count("\n") > 10
    assert TEST_SECRET_ACCESS_KEY not in captured
    assert TEST_SECRET_ACCESS_KEY not in "".join(fleet.console)
