"""The job log against moto: stream made while the job runs, bounded close, no duplicate puts, never raising."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest
import structlog
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from moto.core.models import botocore_stubber
from structlog.testing import capture_logs
from ulid import ULID

from common.job_log import shipper
from common.job_log.breaker import OPEN_AFTER_FAILURES, SLOW_CALL_SECONDS
from common.job_log.events import MAX_MESSAGE_BYTES
from common.job_log.fallback import SIDE_CHANNEL_FAILED, forget_reports
from common.job_log.log import JobLog, OutageBreaker, job_stream_name
from common.job_log.shipper import Backlog, Shipper
from tests.conftest import AwsFleet
from tests.faults import FaultInjector
from tests.waiting import wait_until

FIFTEEN_DAYS = 15 * 24 * 3600


class Counted:
    """The on_delivery_failure callback, counting."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, count: int) -> None:
        self.total += count


def _job_log(fleet: AwsFleet, breaker: OutageBreaker, failures: Any = None, **kwargs: Any) -> JobLog:
    return JobLog(
        logs=fleet.logs,
        log_group=fleet.names.background_job_log_group,
        job_id=str(ULID()),
        context={"correlationId": "corr-1"},
        on_delivery_failure=failures or Counted(),
        breaker=breaker,
        **kwargs,
    )


def _stream(fleet: AwsFleet, job_log: JobLog) -> list[dict[str, Any]]:
    events = fleet.logs.get_log_events(
        logGroupName=fleet.names.background_job_log_group, logStreamName=job_log.stream_name
    )["events"]
    return [json.loads(event["message"]) for event in events]


def _stream_once_made(fleet: AwsFleet, job_log: JobLog) -> list[dict[str, Any]]:
    try:
        return _stream(fleet, job_log)
    except fleet.logs.exceptions.ResourceNotFoundException:
        return []


def _hold(fleet: AwsFleet, operation: str) -> threading.Event:
    """Hold every ``operation`` request before it reaches moto until the returned event is set."""
    release = threading.Event()

    def held(event_name: str, **kwargs: Any) -> Any:
        if event_name.endswith(operation):
            release.wait(timeout=30)
        return botocore_stubber(event_name=event_name, **kwargs)

    fleet.logs.meta.events.unregister("before-send", botocore_stubber)
    fleet.logs.meta.events.register("before-send", held)
    return release


def _run(job_log: JobLog, *names: str) -> None:
    with job_log:
        for name in names:
            job_log.info(name)


@pytest.fixture
def breaker() -> OutageBreaker:
    return OutageBreaker(0.0)


def test_close_returns_while_logs_is_still_answering(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """A PutLogEvents that hangs does not hold close(): the events still arrive once Logs answers."""
    release = threading.Event()
    entered = threading.Event()
    answered = threading.Event()

    def hang(event_name: str, **kwargs: Any) -> Any:
        if event_name.endswith("PutLogEvents"):
            entered.set()
            release.wait(timeout=30)
            answered.set()
        return botocore_stubber(event_name=event_name, **kwargs)

    aws_fleet.logs.meta.events.unregister("before-send", botocore_stubber)
    aws_fleet.logs.meta.events.register("before-send", hang)
    job_log = _job_log(aws_fleet, breaker)

    _run(job_log, "job.started", "job.succeeded")

    assert entered.is_set()
    assert not answered.is_set()
    release.set()
    events = wait_until(lambda: _stream(aws_fleet, job_log), timeout=10, what="the late put")
    assert ["job.started", "job.succeeded"] == [e["message"] for e in events]


def test_the_stream_is_created_while_the_job_runs(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """The create overlaps the job, so only the put is left for close; still one of each."""
    job_log = _job_log(aws_fleet, breaker)
    group = aws_fleet.names.background_job_log_group

    with job_log:
        job_log.info("job.started")
        wait_until(
            lambda: aws_fleet.logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=job_log.stream_name)[
                "logStreams"
            ],
            timeout=10,
            what="the stream, before the job ends",
        )
        job_log.info("job.succeeded")

    assert ["job.started", "job.succeeded"] == [e["message"] for e in _stream(aws_fleet, job_log)]
    assert (1, 1) == (aws_fleet.requests.calls["CreateLogStream"], aws_fleet.requests.calls["PutLogEvents"])


def test_a_job_that_ends_during_a_slow_create_ships_once_it_is_made(
    aws_fleet: AwsFleet, breaker: OutageBreaker
) -> None:
    """Close comes while the create hangs: the events follow the create, in one put, nothing to the fallback."""
    release = _hold(aws_fleet, "CreateLogStream")
    failures = Counted()
    job_log = _job_log(aws_fleet, breaker, failures)

    with capture_logs() as logs:
        _run(job_log, "job.started", "job.succeeded")
        release.set()
        events = wait_until(lambda: _stream_once_made(aws_fleet, job_log), timeout=10, what="the put after the create")

    assert ["job.started", "job.succeeded"] == [e["message"] for e in events]
    assert 1 == aws_fleet.requests.calls["PutLogEvents"]
    assert 0 == failures.total
    assert ["job_log.close_timed_out"] == [entry["event"] for entry in logs if entry["log_level"] == "warning"]


def test_when_shipped_calls_back_once_the_stream_has_the_events(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """The worker settles from this callback: by then the job's last events are in its stream."""
    job_log = _job_log(aws_fleet, breaker)
    seen: list[list[str]] = []
    job_log.open()
    job_log.info("job.started")
    job_log.info("job.succeeded")

    job_log.end()
    job_log.when_shipped(lambda: seen.append([e["message"] for e in _stream(aws_fleet, job_log)]))

    assert [["job.started", "job.succeeded"]] == wait_until(lambda: seen, timeout=10, what="the callback")


def test_a_hanging_put_lets_the_message_settle_at_the_bound_and_still_ships(
    aws_fleet: AwsFleet, breaker: OutageBreaker
) -> None:
    """The callback comes at CLOSE_TIMEOUT_SECONDS while the put hangs, once; the events arrive later."""
    release = _hold(aws_fleet, "PutLogEvents")
    job_log = _job_log(aws_fleet, breaker)
    calls: list[bool] = []
    job_log.open()
    job_log.info("job.started")
    job_log.end()

    with capture_logs() as logs:
        job_log.when_shipped(lambda: calls.append(release.is_set()))
        wait_until(lambda: calls, timeout=10, what="the callback at the bound")
    release.set()

    events = wait_until(lambda: _stream(aws_fleet, job_log), timeout=10, what="the late put")
    assert ["job.started"] == [e["message"] for e in events]
    assert [False] == calls
    assert ["job_log.close_timed_out"] == [entry["event"] for entry in logs]


def test_a_put_that_timed_out_is_sent_once_more_marked_and_never_a_third_time(
    aws_fleet: AwsFleet, breaker: OutageBreaker
) -> None:
    """Stored but unanswered, twice: two copies at most (the second marked resent), the events on stdout too."""
    puts: list[int] = []

    def stored_then_timeout(event_name: str, request: Any, **kwargs: Any) -> Any:
        response = botocore_stubber(event_name=event_name, request=request, **kwargs)
        if event_name.endswith("PutLogEvents"):
            puts.append(1)
            raise ReadTimeoutError(endpoint_url=request.url)
        return response

    aws_fleet.logs.meta.events.unregister("before-send", botocore_stubber)
    aws_fleet.logs.meta.events.register("before-send", stored_then_timeout)
    job_log = _job_log(aws_fleet, breaker)

    with capture_logs() as logs:
        _run(job_log, "job.started", "job.succeeded")

    assert 2 == len(puts)
    stream = [(e["message"], e.get("resent", False)) for e in _stream(aws_fleet, job_log)]
    assert [("job.started", False), ("job.succeeded", False), ("job.started", True), ("job.succeeded", True)] == sorted(
        stream, key=lambda event: (event[1], event[0] != "job.started")
    )
    undelivered = [entry["job_event"]["message"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert ["job.started", "job.succeeded"] == undelivered


def test_a_reset_put_is_delivered_by_its_resend(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """A connection reset on the put (never stored): the resend stores the events; nothing goes to stdout."""
    resets: list[int] = []

    def reset_once(event_name: str, request: Any, **kwargs: Any) -> Any:
        if event_name.endswith("PutLogEvents") and not resets:
            resets.append(1)
            raise ConnectionClosedError(endpoint_url=request.url)
        return botocore_stubber(event_name=event_name, request=request, **kwargs)

    aws_fleet.logs.meta.events.unregister("before-send", botocore_stubber)
    aws_fleet.logs.meta.events.register("before-send", reset_once)
    job_log = _job_log(aws_fleet, breaker)

    with capture_logs() as logs:
        _run(job_log, "job.started", "job.succeeded")

    assert [("job.started", True), ("job.succeeded", True)] == [
        (e["message"], e["resent"]) for e in _stream(aws_fleet, job_log)
    ]
    assert [] == [entry for entry in logs if entry["event"] == "job_log.undelivered"]


def test_only_rejected_events_are_relogged(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """A partly rejected put: the too-old events go to stdout, the accepted ones stay in the stream only."""
    real = time.time()
    now = [real]
    failures = Counted()
    job_log = _job_log(aws_fleet, breaker, failures, clock=lambda: now[0])

    with capture_logs() as logs, job_log:
        now[0] = real - FIFTEEN_DAYS
        job_log.info("job.old")
        now[0] = real
        job_log.info("job.started")
        job_log.info("job.succeeded")

    undelivered = [entry["job_event"]["message"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert ["job.old"] == undelivered
    assert ["job.started", "job.succeeded"] == [e["message"] for e in _stream(aws_fleet, job_log)]
    assert 1 == failures.total


def test_oversized_event_is_valid_json_marked_truncated(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """An event over 256 KiB arrives as valid JSON with truncated and originalBytes, the rest of it intact."""
    job_log = _job_log(aws_fleet, breaker)

    with job_log:
        job_log.info("job.step", step="render", output="x" * 300_000)
        job_log.info("job.succeeded")

    step, succeeded = _stream(aws_fleet, job_log)
    assert (True, "render", "job.step") == (step["truncated"], step["step"], step["message"])
    assert step["originalBytes"] > 300_000
    assert len(json.dumps(step)) <= MAX_MESSAGE_BYTES
    assert "job.succeeded" == succeeded["message"]


def test_short_jobs_cost_two_requests_and_no_threads(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """1000 jobs: one CreateLogStream and one PutLogEvents each, and threads alive as after the first."""
    _run(_job_log(aws_fleet, breaker), "job.started", "job.succeeded")
    baseline = threading.active_count()

    for _ in range(1000):
        _run(_job_log(aws_fleet, breaker), "job.started", "job.step", "job.succeeded")

    assert baseline == threading.active_count()
    assert 1001 == aws_fleet.requests.calls["CreateLogStream"]
    assert 1001 == aws_fleet.requests.calls["PutLogEvents"]


def test_logs_answers_again_and_the_next_due_job_probes(aws_fleet: AwsFleet) -> None:
    """After an outage clears, the first job let through as the probe is delivered and closes the breaker."""
    breaker = OutageBreaker(0.0)
    faults = FaultInjector(aws_fleet.logs)
    faults.fail("*", "unavailable")
    for _ in range(OPEN_AFTER_FAILURES):
        _run(_job_log(aws_fleet, breaker), "job.started")
    assert breaker.is_open()
    faults.clear()

    probe = _job_log(aws_fleet, breaker)
    _run(probe, "job.started")

    assert not breaker.is_open()
    assert ["job.started"] == [e["message"] for e in _stream(aws_fleet, probe)]


def test_one_failed_job_among_delivered_ones_keeps_the_breaker_closed(aws_fleet: AwsFleet) -> None:
    """A single put that fails after its retries costs that job's stream only; the next job ships."""
    breaker = OutageBreaker(30.0)
    faults = FaultInjector(aws_fleet.logs)
    faults.fail("PutLogEvents", "unavailable", times=3)  # all three attempts of one put
    _run(_job_log(aws_fleet, breaker), "job.started")
    assert not breaker.is_open()

    after = _job_log(aws_fleet, breaker)
    _run(after, "job.started")

    assert ["job.started"] == [e["message"] for e in _stream(aws_fleet, after)]


def test_slow_calls_in_a_row_open_the_breaker(aws_fleet: AwsFleet) -> None:
    """Answered, but slower than SLOW_CALL_SECONDS each: delivered, and counted as an outage."""
    breaker = OutageBreaker(30.0)

    def slow(event_name: str, **kwargs: Any) -> Any:
        time.sleep(SLOW_CALL_SECONDS + 0.05)
        return botocore_stubber(event_name=event_name, **kwargs)

    aws_fleet.logs.meta.events.unregister("before-send", botocore_stubber)
    aws_fleet.logs.meta.events.register("before-send", slow)
    first = _job_log(aws_fleet, breaker)
    _run(first, "job.started")  # its create and its put: two slow calls in a row, delivered
    wait_until(lambda: _stream_once_made(aws_fleet, first), timeout=10, what="the first job's slow put")
    assert not breaker.is_open()

    _run(_job_log(aws_fleet, breaker), "job.started")  # the third slow call in a row

    assert wait_until(breaker.is_open, timeout=10, what="the breaker to open on slowness")
    assert ["job.started"] == [e["message"] for e in _stream(aws_fleet, first)]


def test_past_the_backlog_bound_events_go_to_stdout_at_once(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """With the shipper's puts held, the backlog never holds more than its bound; the rest is on stdout."""
    release = _hold(aws_fleet, "PutLogEvents")
    shipper = Shipper(threads=2, backlog=Backlog(max_events=3, max_bytes=1 << 20))
    job_log = _job_log(aws_fleet, breaker, shipper=shipper)

    with capture_logs() as logs:
        job_log.open()
        for step in range(5):
            job_log.info("job.step", step=step)
        job_log.end()
    release.set()

    assert (3, 2) == (shipper.backlog.high_events, shipper.backlog.refused)
    assert [3, 4] == [entry["job_event"]["step"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert "job_log.backlog_full" in [entry["event"] for entry in logs]
    events = wait_until(lambda: _stream_once_made(aws_fleet, job_log), timeout=10, what="the held put")
    assert [0, 1, 2] == [e["step"] for e in events]
    wait_until(lambda: shipper.backlog.held() == (0, 0), timeout=10, what="the backlog to empty")


def test_undelivered_lines_carry_the_job_id_fleet_job_looks_for(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """Each stdout line about a job's missed events names the job at the top (``job_id``), as fleet job expects."""
    FaultInjector(aws_fleet.logs).fail("PutLogEvents", "unavailable")
    job_log = _job_log(aws_fleet, breaker)

    with capture_logs() as logs:
        _run(job_log, "job.started", "job.succeeded")

    job_id = job_log.stream_name.rsplit("/", 1)[-1]
    lines = [entry for entry in logs if entry["event"] in {"job_log.delivery_failed", "job_log.undelivered"}]
    assert [job_id] * 3 == [entry["job_id"] for entry in lines]


def test_undelivered_events_get_back_the_job_id_and_time_their_stream_would_have_given(
    aws_fleet: AwsFleet, breaker: OutageBreaker
) -> None:
    """Only a stream's first event names the job and none repeats the time, so a stdout fallback adds both."""
    FaultInjector(aws_fleet.logs).fail("PutLogEvents", "unavailable")
    job_log = _job_log(aws_fleet, breaker, clock=lambda: 1_700_000_000.25)

    with capture_logs() as logs:
        _run(job_log, "job.started", "job.succeeded")

    job_id = job_log.stream_name.rsplit("/", 1)[-1]
    events = [entry["job_event"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert [(job_id, "2023-11-14T22:13:20.250+00:00")] * 2 == [(e["jobId"], e["timestamp"]) for e in events]
    assert ["corr-1", None] == [e.get("correlationId") for e in events]


def test_closing_the_shipper_writes_what_is_still_queued_to_stdout(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """At exit, events whose put has not come back within the wait go to stdout: never lost with the process."""
    release = _hold(aws_fleet, "PutLogEvents")
    shipper = Shipper(threads=1)
    job_logs = [_job_log(aws_fleet, breaker, shipper=shipper) for _ in range(3)]
    for job_log in job_logs:
        job_log.open()
        job_log.info("job.succeeded")
        job_log.end()

    with capture_logs() as logs:
        figures = shipper.close(timeout=0.2)
    release.set()

    unshipped = [entry["job_event"]["jobId"] for entry in logs if entry["event"] == "job_log.undelivered"]
    assert sorted(job_log.stream_name.rsplit("/", 1)[-1] for job_log in job_logs) == sorted(unshipped)
    assert 3 == figures["unshipped_events_to_stdout"]
    assert (0, 0) == shipper.backlog.held()


def test_closing_the_shipper_ships_a_running_jobs_buffer_when_logs_answers(
    aws_fleet: AwsFleet, breaker: OutageBreaker
) -> None:
    """At exit, a job still running has its buffered events shipped at once, not left for a tick that never comes."""
    shipper = Shipper(threads=1)
    job_log = _job_log(aws_fleet, breaker, shipper=shipper)
    job_log.open()
    job_log.info("job.started")

    figures = shipper.close(timeout=10)

    assert 0 == figures["unshipped_events_to_stdout"]
    assert ["job.started"] == [e["message"] for e in _stream(aws_fleet, job_log)]


def test_closing_the_shared_shipper_is_a_no_op_when_no_job_ever_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """main_job never ships a job log: its exit neither starts threads nor logs a line."""
    monkeypatch.setattr(shipper, "_shared", None)
    threads = threading.active_count()
    with capture_logs() as logs:
        shipper.close_shared_shipper()

    assert (threads, []) == (threading.active_count(), logs)


class _BrokenPipe(io.StringIO):
    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_fallback_never_raises_and_is_reported_once(
    aws_fleet: AwsFleet, breaker: OutageBreaker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Logs down and stdout broken: no method raises, each job is counted, stderr says it once."""
    forget_reports()
    FaultInjector(aws_fleet.logs).fail("*", "down")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(_BrokenPipe()), cache_logger_on_first_use=False)
    failures = Counted()
    try:
        for _ in range(3):
            _run(_job_log(aws_fleet, breaker, failures), "job.started", "job.succeeded")
    finally:
        structlog.reset_defaults()

    reports = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(SIDE_CHANNEL_FAILED, "BrokenPipeError")] == [(r["event"], r["error_type"]) for r in reports]
    assert 3 == failures.total


def test_a_raising_failure_callback_does_not_reach_the_job(aws_fleet: AwsFleet, breaker: OutageBreaker) -> None:
    """The metric callback itself raising (a broken stdout) is swallowed at the boundary."""
    forget_reports()
    FaultInjector(aws_fleet.logs).fail("*", "down")

    def broken(_count: int) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    _run(_job_log(aws_fleet, breaker, broken), "job.started", "job.succeeded")


def test_stream_name_is_dated_by_the_job_id() -> None:
    """The stream's date is the ULID's."""
    assert "job-streams/2025-11-21/01KAK6GS0W5QJ6ZQMKBDR4V0NH" == job_stream_name("01KAK6GS0W5QJ6ZQMKBDR4V0NH")
