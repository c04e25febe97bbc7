"""A background job under its time limit: the deadline it sees, and how a timeout is reported and settled."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from structlog.testing import capture_logs

from background_job.api import JobContext
from background_job.runner import JobRunner
from common import metrics
from common.job_ids import job_id_for_message
from common.job_log.log import job_stream_name
from common.messages import BackgroundJob
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE
from common.sqs.dispatch import PoolDispatcher
from common.sqs.in_flight import InFlight, Lease
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome, Verdict
from common.sqs.shutdown import Shutdown
from tests.conftest import MAX_RECEIVE_COUNT, AwsFleet
from tests.waiting import wait_until

SENT_MS = 1_795_300_000_000
JOB_ID = job_id_for_message("trigger-message-limits", SENT_MS)


class Jobs:
    """``held`` waits until released; ``clock`` returns what its context says about its time limit."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def held(self, job: JobContext) -> None:
        job.log.info("job.step", step="holding")
        self.release.wait(timeout=60)

    @staticmethod
    def clock(job: JobContext) -> dict[str, Any]:
        return {"has_deadline": job.deadline is not None, "time_left": job.time_left()}


class LimitedWorker:
    """The runner behind a time-limited pool, as background_job/service.py assembles them."""

    def __init__(self, fleet: AwsFleet, limits: dict[str, float]) -> None:
        self.fleet = fleet
        self.jobs = Jobs()
        self.metrics_out = io.StringIO()
        self.metrics = MetricsEmitter("Test", BACKGROUND_JOB_SERVICE, self.metrics_out, flush_interval_seconds=None)
        self.runner = JobRunner(
            registry={"held": self.jobs.held, "clock": self.jobs.clock},
            logs=fleet.logs,
            log_group=fleet.names.background_job_log_group,
            metrics_emitter=self.metrics,
            max_attempts=MAX_RECEIVE_COUNT,
            max_receive_count=MAX_RECEIVE_COUNT,
            shutdown=Shutdown(),
            time_limits=limits,
        )
        self.dispatcher = PoolDispatcher(self.runner, 2, 0, time_limit_seconds=600, on_timeout=self.runner.timed_out)

    def start(self, job_type: str) -> Lease:
        job = BackgroundJob(JOB_ID, job_type, "corr-7", {"trigger": "t", "data": {}}, "2026-11-22T10:00:00Z")
        [lease] = InFlight(30).open([InboundMessage("bg-1", "receipt", job.to_body(), 1, SENT_MS)])
        self.dispatcher.dispatch([lease])
        return lease

    def stream_events(self) -> list[str]:
        events = self.fleet.logs.get_log_events(
            logGroupName=self.fleet.names.background_job_log_group, logStreamName=job_stream_name(JOB_ID)
        )["events"]
        return [json.loads(event["message"])["message"] for event in events]

    def emitted(self, metric: str) -> float:
        self.metrics.flush()  # what the interval timer or the exit does
        lines = (json.loads(line) for line in self.metrics_out.getvalue().splitlines())
        return sum(float(line.get(metric, 0)) for line in lines)

    def stop(self) -> None:
        self.jobs.release.set()
        wait_until(lambda: self.dispatcher.slot_report().lost == 0, timeout=30, what="the held job to return")
        self.dispatcher.wait_until_idle(timeout=30)
        self.dispatcher.abandon()


def test_a_job_type_s_own_limit_times_it_out_with_events_a_metric_and_a_retry(aws_fleet: AwsFleet) -> None:
    """job.timed_out on stdout and in the job's stream, JobsTimedOut counted, the attempt retried with the reason."""
    worker = LimitedWorker(aws_fleet, {"held": 0.3})
    try:
        with capture_logs() as logs:
            lease = worker.start("held")
            outcome = wait_until(lambda: lease.outcome, timeout=10, what="the attempt to time out")
        in_stream = wait_until(
            lambda: "job.timed_out" in (events := worker.stream_events()) and events,
            timeout=20,
            what="job.timed_out in the job's stream",
        )
    finally:
        worker.stop()

    [stdout_event] = [line for line in logs if line["event"] == "job.timed_out"]
    assert Outcome.retry("timed out after 0.3 s") == outcome
    assert (JOB_ID, 0.3, True) == (stdout_event["job_id"], stdout_event["limit_seconds"], stdout_event["will_retry"])
    assert ["job.started", "job.step", "job.timed_out"] == in_stream
    assert 1 == worker.emitted(metrics.JOBS_TIMED_OUT)


def test_a_job_that_returns_after_its_timeout_is_never_reported_as_succeeded(aws_fleet: AwsFleet) -> None:
    """The late return is noted in the job's stream; no job.succeeded, no JobsSucceeded, the outcome unchanged."""
    worker = LimitedWorker(aws_fleet, {"held": 0.3})
    try:
        with capture_logs() as logs:
            lease = worker.start("held")
            timed_out = wait_until(lambda: lease.outcome, timeout=10, what="the attempt to time out")
            worker.jobs.release.set()
            wait_until(lambda: worker.dispatcher.slot_report().lost == 0, timeout=10, what="the late return")
        in_stream = wait_until(
            lambda: "job.returned_after_timeout" in (events := worker.stream_events()) and events,
            timeout=20,
            what="the late return in the job's stream",
        )
    finally:
        worker.stop()

    assert timed_out == lease.outcome
    assert "job.succeeded" not in in_stream
    assert [] == [line for line in logs if line["event"] == "job.succeeded"]
    assert 0 == worker.emitted(metrics.JOBS_SUCCEEDED)


def test_the_job_sees_its_own_deadline_and_the_time_left(aws_fleet: AwsFleet) -> None:
    """A well-behaved long job can plan around job.time_left(): it counts down from the job type's limit."""
    worker = LimitedWorker(aws_fleet, {"clock": 30})
    try:
        lease = worker.start("clock")
        outcome = wait_until(lambda: lease.outcome, timeout=10, what="the job to finish")
    finally:
        worker.stop()

    assert Verdict.DONE is outcome.verdict
    result = json.loads(outcome.result_json or "{}")
    assert result["has_deadline"]
    assert 0 < result["time_left"] <= 30
