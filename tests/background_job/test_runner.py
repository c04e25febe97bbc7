"""Running one background job: its own log stream, its lifecycle events, and the outcome it leads to."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from background_job.jobs import REGISTRY
from background_job.runner import JobRunner
from common import metrics
from common.job_ids import job_id_for_message
from common.job_log.breaker import OPEN_AFTER_FAILURES
from common.job_log.log import job_stream_name
from common.messages import BackgroundJob
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE
from common.settings import DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS
from common.sqs.dispatch import run_guarded
from common.sqs.inbound import InboundMessage
from common.sqs.settlement import Outcome, Verdict
from common.sqs.shutdown import Shutdown
from tests.conftest import MAX_RECEIVE_COUNT, AwsFleet
from tests.faults import FaultInjector
from tests.waiting import wait_until

SENT_MS = 1_795_300_000_000
#: The queue's redrive backstop in these tests: above MAX_ATTEMPTS (conftest's), as in a deployed queue.
BACKSTOP_RECEIVES = 10
JOB_ID = job_id_for_message("trigger-message-1", SENT_MS)


class Harness:
    def __init__(
        self, fleet: AwsFleet, logs_outage_cooldown_seconds: float = DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS
    ) -> None:
        self.fleet = fleet
        self.metrics_out = io.StringIO()
        self.metrics = MetricsEmitter("Test", BACKGROUND_JOB_SERVICE, self.metrics_out, flush_interval_seconds=None)
        self.runner = JobRunner(
            registry=REGISTRY,
            logs=fleet.logs,
            log_group=fleet.names.background_job_log_group,
            metrics_emitter=self.metrics,
            max_attempts=MAX_RECEIVE_COUNT,
            max_receive_count=BACKSTOP_RECEIVES,
            shutdown=Shutdown(),
            logs_outage_cooldown_seconds=logs_outage_cooldown_seconds,
        )

    def run(
        self, job_type: str = "main-job-processing", attempt: int = 1, ledger_attempt: int | None = None, **data: Any
    ) -> Outcome:
        """``attempt`` is the delivery's receive count; ``ledger_attempt`` the run the ledger's claim counted."""
        job = BackgroundJob(JOB_ID, job_type, "corr-42", {"trigger": "api_call", "data": data}, "2026-11-22T10:00:00Z")
        message = InboundMessage(
            "bg-message-1", "receipt", job.to_body(), attempt, SENT_MS, ledger_attempt=ledger_attempt
        )
        outcome = run_guarded(self.runner, message)
        return _settled(outcome)

    def stream_events(self) -> list[dict[str, Any]]:
        events = self.fleet.logs.get_log_events(
            logGroupName=self.fleet.names.background_job_log_group, logStreamName=job_stream_name(JOB_ID)
        )["events"]
        return [json.loads(event["message"]) for event in events]

    def emitted(self) -> list[dict[str, Any]]:
        self.metrics.flush()  # what the interval timer or the exit does
        return [json.loads(line) for line in self.metrics_out.getvalue().splitlines()]


def _settled(outcome: Outcome) -> Outcome:
    """Wait for the outcome's gate as the dispatcher does: the job's stream is shipped once it opens."""
    if outcome.settle_after is not None:
        gate_open = threading.Event()
        outcome.settle_after(gate_open.set)
        assert gate_open.wait(timeout=10), "the settle gate never opened"
    return outcome


@pytest.fixture
def harness(aws_fleet: AwsFleet) -> Harness:
    return Harness(aws_fleet)


def test_job_writes_its_own_stream_with_the_lifecycle(harness: Harness) -> None:
    """A successful job logs started, its steps and succeeded, each with the fields the contract names."""
    outcome = harness.run(userId="test123", action="process_data")

    events = harness.stream_events()
    assert Outcome.done() == outcome
    assert ["job.started", "job.step", "job.step", "job.succeeded"] == [e["message"] for e in events]
    assert all({"level", "message"} <= set(e) for e in events)
    assert (JOB_ID, "corr-42", "main-job-processing", 1) == tuple(
        events[0][key] for key in ("jobId", "correlationId", "jobType", "attempt")
    )


def test_only_the_first_event_carries_the_identity_and_no_event_repeats_the_time(harness: Harness) -> None:
    """The stream name carries the jobId and CloudWatch each event's time: repeating them was 2/3 of the bytes."""
    harness.run(userId="test123", action="process_data")

    events = harness.stream_events()
    assert [] == [e["message"] for e in events[1:] if {"jobId", "correlationId", "jobType", "attempt"} & set(e)]
    assert [] == [e["message"] for e in events if "timestamp" in e]


def test_short_job_costs_two_cloudwatch_logs_calls(harness: Harness) -> None:
    """CreateLogStream up front and one PutLogEvents at close: the floor for a stream per job."""
    harness.run()

    assert 1 == harness.fleet.requests.calls["CreateLogStream"]
    assert 1 == harness.fleet.requests.calls["PutLogEvents"]


def test_stream_date_comes_from_the_job_id(harness: Harness) -> None:
    """The stream is dated by the ULID, so a retry on another day writes to the same stream."""
    assert f"job-streams/2026-11-21/{JOB_ID}" == job_stream_name(JOB_ID)


def test_retry_writes_to_the_same_stream(harness: Harness) -> None:
    """A second attempt finds its stream already there and appends to it."""
    harness.run("diagnostic-fail", attempt=1)
    harness.run("diagnostic-fail", attempt=2)

    started = [e for e in harness.stream_events() if e["message"] == "job.started"]
    assert [1, 2] == [e["attempt"] for e in started]


def test_failure_is_retried_and_says_so(harness: Harness) -> None:
    """A handler exception is a retry, recorded with error type, attempt and will_retry."""
    outcome = harness.run("diagnostic-fail", attempt=1)

    [failed] = [e for e in harness.stream_events() if e["message"] == "job.failed"]
    assert Verdict.RETRY == outcome.verdict
    assert ("DiagnosticFailure", 1, True) == (failed["error_type"], failed["attempt"], failed["will_retry"])


def test_last_attempt_says_it_will_not_be_retried(harness: Harness) -> None:
    """On the maxReceiveCount-th attempt the job says it goes to the DLQ next."""
    harness.run("diagnostic-fail", attempt=MAX_RECEIVE_COUNT)

    [failed] = [e for e in harness.stream_events() if e["message"] == "job.failed"]
    assert failed["will_retry"] is False


def test_will_retry_counts_the_ledger_s_runs_not_receives(harness: Harness) -> None:
    """Busy copies and releases cost receives but no runs: the fifth receive of a job's first run retries."""
    harness.run("diagnostic-fail", attempt=MAX_RECEIVE_COUNT + 2, ledger_attempt=1)

    [failed] = [e for e in harness.stream_events() if e["message"] == "job.failed"]
    assert (1, MAX_RECEIVE_COUNT, True) == (failed["attempt"], failed["max_attempts"], failed["will_retry"])


def test_the_ledger_s_last_run_says_it_will_not_be_retried_on_an_early_receive(harness: Harness) -> None:
    """A redriven job starts its receive count again, but its runs go on: its last run says so."""
    harness.run("diagnostic-fail", attempt=1, ledger_attempt=MAX_RECEIVE_COUNT)

    [failed] = [e for e in harness.stream_events() if e["message"] == "job.failed"]
    assert (MAX_RECEIVE_COUNT, False) == (failed["attempt"], failed["will_retry"])


def test_the_queue_s_last_receive_says_it_will_not_be_retried(harness: Harness) -> None:
    """The redrive backstop ends a job whatever its run count: the settler hands it to the DLQ itself."""
    harness.run("diagnostic-fail", attempt=BACKSTOP_RECEIVES, ledger_attempt=1)

    [failed] = [e for e in harness.stream_events() if e["message"] == "job.failed"]
    assert failed["will_retry"] is False


def test_permanent_error_is_quarantined_at_once(harness: Harness) -> None:
    """A job that can never succeed as submitted is not retried pointlessly."""
    outcome = harness.run("diagnostic-sleep", seconds="forever")

    assert Verdict.QUARANTINE == outcome.verdict
    assert "data.seconds must be a number" in outcome.reason


def test_unknown_job_type_is_quarantined_with_the_known_ones(harness: Harness) -> None:
    """An unknown jobType is a malformed message, and the reason lists what would have worked."""
    outcome = harness.run("no-such-job")

    assert Verdict.QUARANTINE == outcome.verdict
    assert "unknown jobType 'no-such-job'" in outcome.reason
    assert "main-job-processing" in outcome.reason


def test_metrics_record_success_duration_and_queue_latency(harness: Harness) -> None:
    """Each job emits one EMF line with the metrics the alarms use."""
    harness.run()

    [line] = harness.emitted()
    assert 1 == line[metrics.JOBS_SUCCEEDED]
    assert 0 == line[metrics.JOBS_FAILED]
    assert {metrics.JOB_DURATION, metrics.JOB_QUEUE_LATENCY} <= set(line)


def test_job_completes_when_cloudwatch_logs_is_down(harness: Harness) -> None:
    """A Logs outage neither loses nor blocks the job: events go to stdout and the failure is counted."""
    FaultInjector(harness.fleet.logs).fail("*", "down")

    with capture_logs() as logs:
        outcome = harness.run()

    undelivered = [entry["job_event"]["message"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert Outcome.done() == outcome
    assert ["job.started", "job.step", "job.step", "job.succeeded"] == undelivered
    assert any(entry["event"] == "job_log.unavailable" for entry in logs)
    assert 1 == sum(line.get(metrics.JOB_LOG_DELIVERY_FAILURES, 0) for line in harness.emitted())


@pytest.mark.parametrize(
    ("cooldown", "next_job_reaches_logs"), [(DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS, False), (0.0, True)]
)
def test_after_a_logs_outage_jobs_skip_logs_for_the_cooldown(
    aws_fleet: AwsFleet, cooldown: float, next_job_reaches_logs: bool
) -> None:
    """Once Logs is back, the next job still writes to stdout until LOGS_OUTAGE_COOLDOWN_SECONDS have passed."""
    harness = Harness(aws_fleet, logs_outage_cooldown_seconds=cooldown)
    faults = FaultInjector(harness.fleet.logs)
    faults.fail("*", "down")
    for _ in range(OPEN_AFTER_FAILURES):  # a sustained outage, not one failed call, opens the breaker
        harness.run()
    faults.clear()

    with capture_logs() as logs:
        outcome = harness.run()

    assert Outcome.done() == outcome
    streams = harness.fleet.logs.describe_log_streams(
        logGroupName=harness.fleet.names.background_job_log_group, logStreamNamePrefix=job_stream_name(JOB_ID)
    )["logStreams"]
    assert next_job_reaches_logs == bool(streams)
    assert next_job_reaches_logs != any(entry["event"] == "job_log.unavailable" for entry in logs)


def test_failed_put_sends_the_events_to_stdout(harness: Harness) -> None:
    """When the stream exists but PutLogEvents fails, the batch is not dropped: it goes to stdout."""
    FaultInjector(harness.fleet.logs).fail("PutLogEvents", "unavailable")

    with capture_logs() as logs:
        outcome = harness.run()

    undelivered = [entry["job_event"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert Outcome.done() == outcome
    assert 4 == len(undelivered)
    assert any(entry["event"] == "job_log.delivery_failed" for entry in logs)


def test_throttled_create_log_stream_is_retried(harness: Harness) -> None:
    """CreateLogStream's 50 TPS quota: throttling is retried with backoff and the job's stream still appears."""
    faults = FaultInjector(harness.fleet.logs)
    faults.fail("CreateLogStream", "throttle", times=5)

    harness.run()

    assert 5 == faults.injected["CreateLogStream"]
    assert "job.succeeded" == harness.stream_events()[-1]["message"]


def test_a_job_told_of_a_cancel_stops_and_is_counted_cancelled_with_its_progress(harness: Harness) -> None:
    """The gate's cancel sets job.cancelled; diagnostic-sleep stops: a DONE verdict marked cancelled, JobsCancelled."""
    outcomes: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcomes.append(harness.run("diagnostic-sleep", seconds=60)))
    worker.start()
    wait_until(lambda: harness.runner.progress("bg-message-1"), timeout=10, what="the job's first progress report")

    harness.runner.cancel_requested("bg-message-1")
    worker.join(timeout=10)

    [outcome] = outcomes
    [emitted] = [line for line in harness.emitted() if metrics.JOBS_CANCELLED in line]
    assert (Verdict.DONE, True) == (outcome.verdict, outcome.cancelled)
    assert outcome.progress is not None
    assert (1, 0, 0) == (emitted[metrics.JOBS_CANCELLED], emitted[metrics.JOBS_FAILED], emitted[metrics.JOBS_SUCCEEDED])
    assert ["job.cancel_requested", "job.cancelled"] == [
        e["message"] for e in harness.stream_events() if e["message"].startswith("job.cancel")
    ]
