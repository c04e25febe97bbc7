"""The process entry point: a worker that cannot be assembled exits 78 with one config.invalid line."""

from __future__ import annotations

import json

import pytest

from common import worker
from common.names import BACKGROUND_JOB_SERVICE
from common.settings import ConfigError, Settings
from common.sqs.consumer import Consumer
from common.sqs.shutdown import Shutdown
from common.worker import EXIT_CONFIG_ERROR, run_service


def test_a_setting_found_bad_while_assembling_exits_78_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job type's own TIMEOUT_SECONDS is checked as the worker is built: same exit, same one line."""
    for name, value in {"BACKGROUND_QUEUE_URL": "q", "BACKGROUND_DLQ_URL": "d", "JOB_LOG_GROUP": "g"}.items():
        monkeypatch.setenv(name, value)
    # The test process keeps its own logging and signal handlers.
    monkeypatch.setattr(worker, "configure_logging", lambda **_: None)
    monkeypatch.setattr(worker, "install_signal_handlers", lambda _: None)

    def refuse(settings: Settings, shutdown: Shutdown) -> Consumer:
        raise ConfigError("background_job.jobs.report.TIMEOUT_SECONDS=0 must be above 0")

    status = run_service(BACKGROUND_JOB_SERVICE, refuse)

    [line] = capsys.readouterr().err.splitlines()
    assert EXIT_CONFIG_ERROR == status
    assert {"event": "config.invalid", "service": BACKGROUND_JOB_SERVICE} == {
        k: v for k, v in json.loads(line).items() if k != "error"
    }
    assert "TIMEOUT_SECONDS" in json.loads(line)["error"]
