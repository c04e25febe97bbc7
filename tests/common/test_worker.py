"""The process entry point: a worker that cannot be assembled exits 78 with one config.invalid line."""

from __future__ import annotations

import io
import json

import pytest

from common import metrics, worker
from common.metrics import MetricsEmitter
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


class _OneJobConsumer:
    """Stands in for the consumer loop: one job's metrics, then a clean stop (metrics are what is tested)."""

    def __init__(self, emitter: MetricsEmitter) -> None:
        self._emitter = emitter

    def run(self) -> None:
        self._emitter.emit({metrics.JOBS_SUCCEEDED: 1, metrics.JOB_DURATION: 12}, jobType="noop")

    def threads_left_behind(self) -> int:
        return 0


def test_a_clean_exit_writes_the_metrics_the_emitters_still_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Aggregated EMF values wait up to an interval: run_service flushes them after the loop, none are lost."""
    for name, value in {"BACKGROUND_QUEUE_URL": "q", "BACKGROUND_DLQ_URL": "d", "JOB_LOG_GROUP": "g"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr(worker, "configure_logging", lambda **_: None)
    monkeypatch.setattr(worker, "install_signal_handlers", lambda _: None)
    # The process-wide job-log shipper would be closed for every later test in this process.
    monkeypatch.setattr(worker, "close_shared_shipper", lambda: None)
    stream = io.StringIO()
    emitter = MetricsEmitter("Test", BACKGROUND_JOB_SERVICE, stream, flush_interval_seconds=3600)

    status = run_service(BACKGROUND_JOB_SERVICE, lambda _settings, _shutdown: _OneJobConsumer(emitter))  # type: ignore[arg-type,return-value]

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert 0 == status
    assert (1, [12]) == (line[metrics.JOBS_SUCCEEDED], line[metrics.JOB_DURATION])
