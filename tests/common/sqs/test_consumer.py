"""The shared consumer: receive only what it can run, finish on shutdown, release what it never started."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from common import side_channels
from common.health import check
from common.names import BACKGROUND_JOB_SERVICE
from common.sqs.consumer import Consumer
from common.sqs.dispatch import PoolDispatcher
from common.sqs.hooks import LastAttempt, NoHooks
from common.sqs.in_flight import InFlight, Lease
from common.sqs.inbound import InboundMessage
from common.sqs.settlement import Outcome
from common.sqs.shutdown import Shutdown, install_signal_handlers
from common.sqs.time_limit import EXIT_SLOTS_LOST, Fitness
from common.worker import build_consumer
from tests.conftest import AwsFleet
from tests.consumer_thread import consumer_running
from tests.waiting import wait_until


class BlockingHandler:
    """Holds every message until released, recording which ones started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, message: InboundMessage) -> Outcome:
        with self._lock:
            self.started.append(message.body)
        self.release.wait(timeout=30)
        return Outcome.done()


def _consumer(
    fleet: AwsFleet, handler: Callable[[InboundMessage], Outcome], shutdown: Shutdown, **overrides: Any
) -> Consumer:
    settings = fleet.settings(BACKGROUND_JOB_SERVICE, **{"receive_wait_seconds": 1, **overrides})
    return build_consumer(
        settings=settings,
        sqs=fleet.sqs,
        queue_url=fleet.urls.background,
        dlq_url=fleet.urls.background_dlq,
        shutdown=shutdown,
        make_dispatcher=lambda: PoolDispatcher(handler, settings.concurrency),
    )


def _send(fleet: AwsFleet, *bodies: str) -> None:
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody=body)


def test_receives_no_more_than_its_free_slots(aws_fleet: AwsFleet) -> None:
    """With two slots busy, the other messages stay visible on the queue for other workers."""
    handler, shutdown = BlockingHandler(), Shutdown()
    _send(aws_fleet, "a", "b", "c", "d", "e")

    with consumer_running(_consumer(aws_fleet, handler, shutdown, concurrency=2), shutdown):
        wait_until(lambda: len(handler.started) == 2, timeout=10, what="two jobs to start")
        assert (3, 2) == aws_fleet.depth(aws_fleet.urls.background)
        handler.release.set()
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (0, 0), timeout=20, what="queue to drain")

    assert ["a", "b", "c", "d", "e"] == sorted(handler.started)


def test_shutdown_finishes_running_jobs_and_releases_unstarted_ones(aws_fleet: AwsFleet) -> None:
    """On SIGTERM: running jobs complete and are deleted; messages received but not started are visible at once."""
    handler, shutdown = BlockingHandler(), Shutdown()
    consumer = _consumer(aws_fleet, handler, shutdown, concurrency=4)
    _send(aws_fleet, "running-1", "running-2")

    with consumer_running(consumer, shutdown) as thread:
        wait_until(lambda: len(handler.started) == 2, timeout=10, what="two jobs to start")
        # The next long poll returns two more messages just as the stop signal arrives.
        aws_fleet.sqs.meta.events.register(
            "after-call.sqs.ReceiveMessage",
            lambda parsed, **_: parsed.get("Messages") and shutdown.request("SIGTERM during a long poll"),
        )
        _send(aws_fleet, "unstarted-1", "unstarted-2")
        wait_until(shutdown.is_requested, timeout=10, what="the receive that carries the stop signal")
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background)[0] == 2, timeout=10, what="release")
        handler.release.set()
        thread.join(timeout=20)

    assert ["running-1", "running-2"] == sorted(handler.started)
    assert (2, 0) == aws_fleet.depth(aws_fleet.urls.background)
    assert ["unstarted-1", "unstarted-2"] == sorted(m["Body"] for m in aws_fleet.receive_all(aws_fleet.urls.background))


def test_long_job_has_its_visibility_extended_and_is_delivered_once(aws_fleet: AwsFleet) -> None:
    """A job longer than the visibility timeout keeps its message hidden and runs exactly once."""
    aws_fleet.sqs.set_queue_attributes(QueueUrl=aws_fleet.urls.background, Attributes={"VisibilityTimeout": "10"})
    runs: list[str] = []

    def slow(message: InboundMessage) -> Outcome:
        runs.append(message.message_id)
        time.sleep(13)  # the job itself: longer than the 10 s visibility timeout
        return Outcome.done()

    shutdown = Shutdown()
    _send(aws_fleet, "long")
    with consumer_running(_consumer(aws_fleet, slow, shutdown, concurrency=2, visibility_timeout_seconds=10), shutdown):
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (0, 0), timeout=40, what="the long job")

    assert 1 == len(runs)
    assert aws_fleet.requests.calls["ChangeMessageVisibilityBatch"] >= 1


def test_handler_crash_is_a_retry_not_a_dead_worker(aws_fleet: AwsFleet) -> None:
    """An exception escaping a handler becomes a visibility retry, and the worker keeps consuming."""
    seen: list[str] = []

    def crashy(message: InboundMessage) -> Outcome:
        seen.append(message.body)
        if message.body == "bad":
            raise RuntimeError("handler bug")
        return Outcome.done()

    shutdown = Shutdown()
    _send(aws_fleet, "bad", "good")
    with consumer_running(_consumer(aws_fleet, crashy, shutdown), shutdown):
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (0, 1), timeout=20, what="settling")

    assert ["bad", "good"] == sorted(seen)


def test_liveness_file_is_touched_while_the_loop_turns(aws_fleet: AwsFleet, tmp_path: Path) -> None:
    """The health check's heartbeat file is refreshed by the loop itself, so the check reports healthy."""
    heartbeat = tmp_path / "worker.heartbeat"
    shutdown = Shutdown()
    consumer = _consumer(aws_fleet, BlockingHandler(), shutdown, heartbeat_file=str(heartbeat))

    with consumer_running(consumer, shutdown):
        wait_until(heartbeat.exists, timeout=10, what="the heartbeat file")
        healthy, _detail = check([heartbeat], max_age_seconds=30, now=time.time())

    assert healthy


def test_cancel_returns_work_it_never_started() -> None:
    """A pool asked to stop hands back the queued leases for release and lets the running one finish."""
    handler = BlockingHandler()
    in_flight = InFlight(30)
    pool = PoolDispatcher(handler, concurrency=1)
    pool.dispatch(in_flight.open([InboundMessage(f"id-{i}", f"rh-{i}", f"body-{i}", 1, 0) for i in range(3)]))
    wait_until(lambda: handler.started, timeout=5, what="the first job")

    unstarted = pool.cancel_unstarted()
    handler.release.set()

    assert pool.wait_until_idle(timeout=10)
    assert ["body-0"] == handler.started
    assert ["body-1", "body-2"] == [lease.message.body for lease in unstarted]
    assert [] == pool.abandon()


def test_no_receive_starts_after_the_stop_request(aws_fleet: AwsFleet) -> None:
    """A slot freeing after the signal does not start another long poll."""
    shutdown = Shutdown()
    receives_after_stop: list[int] = []

    def stops_the_worker(_message: InboundMessage) -> Outcome:
        shutdown.request("SIGTERM while the pool is full")
        return Outcome.done()

    def count(**_: Any) -> None:
        if shutdown.is_requested():
            receives_after_stop.append(1)

    aws_fleet.sqs.meta.events.register("before-call.sqs.ReceiveMessage", count)
    _send(aws_fleet, "only")
    consumer = _consumer(aws_fleet, stops_the_worker, shutdown, concurrency=1)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    thread.join(timeout=30)

    assert [] == receives_after_stop
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)


def test_the_grace_period_runs_from_the_stop_request() -> None:
    """The drain deadline is the request's time plus the grace period, not the end of the long poll."""
    shutdown = Shutdown()
    shutdown.request("SIGTERM")

    assert shutdown.requested_at is not None
    assert shutdown.requested_at + 25.0 == shutdown.deadline(25.0)


def test_a_job_still_running_when_the_grace_period_ends_has_its_message_released(aws_fleet: AwsFleet) -> None:
    """At the deadline the running job's message is made visible again at once, not kept invisible."""
    handler, shutdown = BlockingHandler(), Shutdown()
    _send(aws_fleet, "overrun")
    consumer = _consumer(aws_fleet, handler, shutdown, concurrency=1, shutdown_grace_seconds=0.0)
    thread = threading.Thread(target=consumer.run)
    with capture_logs() as logs:
        thread.start()
        wait_until(lambda: handler.started, timeout=10, what="the job to start")
        shutdown.request("SIGTERM")
        thread.join(timeout=30)
    try:
        visible_while_the_job_still_runs = aws_fleet.depth(aws_fleet.urls.background)
    finally:
        handler.release.set()  # the job ends after its message was handed back: its outcome changes nothing

    events = [e["event"] for e in logs]
    assert (1, 0) == visible_while_the_job_still_runs
    assert 1 == consumer.abandoned_jobs
    assert ["worker.jobs_abandoned", "message.released", "worker.drained", "worker.stopped"] == [
        e for e in events if e in {"worker.jobs_abandoned", "message.released", "worker.drained", "worker.stopped"}
    ]


def test_nothing_is_extended_after_the_worker_stopped(aws_fleet: AwsFleet) -> None:
    """The heartbeat thread has ended when the loop returns, even though a job overran the grace period."""
    handler, shutdown = BlockingHandler(), Shutdown()
    _send(aws_fleet, "overrun")
    consumer = _consumer(aws_fleet, handler, shutdown, concurrency=1, shutdown_grace_seconds=0.0)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    wait_until(lambda: handler.started, timeout=10, what="the job to start")
    heartbeats = [t for t in threading.enumerate() if t.name == "visibility-heartbeat"]
    shutdown.request("SIGTERM")
    thread.join(timeout=30)
    try:
        still_extending = [t for t in heartbeats if t.is_alive()]
    finally:
        handler.release.set()

    assert heartbeats
    assert [] == still_extending


def test_a_job_ended_by_system_exit_is_retried_not_extended_forever(aws_fleet: AwsFleet) -> None:
    """A BaseException escaping a job (a library's sys.exit()) still settles its delivery as a retry."""
    shutdown = Shutdown()

    def exits(_message: InboundMessage) -> Outcome:
        raise SystemExit(3)

    _send(aws_fleet, "exits")
    with consumer_running(_consumer(aws_fleet, exits, shutdown), shutdown), capture_logs() as logs:
        wait_until(lambda: any(e["event"] == "message.retry_scheduled" for e in logs), timeout=20, what="the retry")

    [retry, *_] = [e for e in logs if e["event"] == "message.retry_scheduled"]
    assert retry["visible_in_seconds"] > 0


def test_the_signal_handler_only_records_the_request() -> None:
    """SIGTERM sets the event and logs nothing: a log write it interrupted could otherwise deadlock."""
    shutdown = Shutdown()
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        install_signal_handlers(shutdown)
        with capture_logs() as logs:
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])

    assert shutdown.is_requested()
    assert [] == logs


def test_a_worker_that_cannot_log_for_a_minute_settles_and_exits_75(
    aws_fleet: AwsFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdout failing for LOG_OUTAGE_EXIT_SECONDS stops the worker in order, with EX_TEMPFAIL."""
    monkeypatch.setattr(
        side_channels.STDOUT, "_failing_since", time.monotonic() - side_channels.LOG_OUTAGE_EXIT_SECONDS
    )
    shutdown = Shutdown()
    consumer = _consumer(aws_fleet, BlockingHandler(), shutdown)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    thread.join(timeout=30)

    assert not thread.is_alive()
    assert side_channels.EXIT_LOGS_UNWRITABLE == shutdown.exit_status


class QuickThenHeld:
    """Jobs named ``quick*`` end at once (so the pool learns jobs are short); any other runs until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = threading.Event()

    def __call__(self, message: InboundMessage) -> Outcome:
        self.started.append(message.body)
        if not message.body.startswith("quick"):
            self.release.wait(timeout=60)  # the 10-minute job, ended by the test
        return Outcome.done()


def _receiving_ahead(
    fleet: AwsFleet, handler: QuickThenHeld, shutdown: Shutdown, max_buffer_wait_seconds: float
) -> tuple[Consumer, PoolDispatcher]:
    """A one-slot consumer whose horizon is long enough that the held job counts as about to free its slot."""
    settings = fleet.settings(BACKGROUND_JOB_SERVICE, receive_wait_seconds=1, concurrency=1)
    dispatcher = PoolDispatcher(
        handler, 1, ahead_horizon_seconds=600.0, max_buffer_wait_seconds=max_buffer_wait_seconds
    )
    consumer = build_consumer(
        settings=settings,
        sqs=fleet.sqs,
        queue_url=fleet.urls.background,
        dlq_url=fleet.urls.background_dlq,
        shutdown=shutdown,
        make_dispatcher=lambda: dispatcher,
    )
    return consumer, dispatcher


def _start_held_job(fleet: AwsFleet, handler: QuickThenHeld) -> None:
    _send(fleet, "quick")
    wait_until(lambda: fleet.depth(fleet.urls.background) == (0, 0), timeout=20, what="the quick job")
    _send(fleet, "long")
    wait_until(lambda: "long" in handler.started, timeout=20, what="the long job to start")
    _send(fleet, "next")


def test_sigterm_releases_messages_received_ahead_at_once(aws_fleet: AwsFleet) -> None:
    """A message waiting in the receive-ahead buffer is an open lease, and SIGTERM makes it visible at once."""
    handler, shutdown = QuickThenHeld(), Shutdown()
    consumer, dispatcher = _receiving_ahead(aws_fleet, handler, shutdown, max_buffer_wait_seconds=600.0)

    with consumer_running(consumer, shutdown) as thread:
        _start_held_job(aws_fleet, handler)
        wait_until(dispatcher.buffered, timeout=20, what="the next message to be received ahead")
        [ahead] = dispatcher.buffered()
        assert ahead.registry.is_open(ahead)
        shutdown.request("SIGTERM")
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (1, 1), timeout=10, what="the release")
        handler.release.set()
        thread.join(timeout=20)

    assert ["quick", "long"] == handler.started
    [released] = aws_fleet.receive_all(aws_fleet.urls.background)
    assert ("next", "2") == (released["Body"], released["Attributes"]["ApproximateReceiveCount"])


def test_a_long_job_does_not_keep_messages_received_ahead_invisible(aws_fleet: AwsFleet) -> None:
    """While a 10-minute job holds the only slot, a message received ahead goes back after the buffer bound."""
    handler, shutdown = QuickThenHeld(), Shutdown()
    consumer, dispatcher = _receiving_ahead(aws_fleet, handler, shutdown, max_buffer_wait_seconds=0.2)

    with consumer_running(consumer, shutdown), capture_logs() as logs:
        _start_held_job(aws_fleet, handler)
        wait_until(lambda: any(e["event"] == "dispatch.buffer_stale" for e in logs), timeout=20, what="the bound")
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (1, 1), timeout=10, what="the release")
        assert ["quick", "long"] == handler.started
        assert 0 == dispatcher.free_slots()  # nothing more is taken ahead while the slot stays busy
        handler.release.set()
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.background) == (0, 0), timeout=20, what="the next job")

    assert ["quick", "long", "next"] == handler.started


def _time_limited_consumer(
    fleet: AwsFleet,
    handler: Callable[[InboundMessage], Outcome],
    shutdown: Shutdown,
    fitness: Fitness,
    **overrides: Any,
) -> Consumer:
    settings = fleet.settings(BACKGROUND_JOB_SERVICE, **{"receive_wait_seconds": 1, "concurrency": 2, **overrides})
    return build_consumer(
        settings=settings,
        sqs=fleet.sqs,
        queue_url=fleet.urls.background,
        dlq_url=fleet.urls.background_dlq,
        shutdown=shutdown,
        make_dispatcher=lambda: PoolDispatcher(handler, 2, time_limit_seconds=0.5, fitness=fitness),
    )


def test_a_worker_whose_slots_all_hang_hands_their_messages_back_and_exits_70(aws_fleet: AwsFleet) -> None:
    """Both jobs pass their limit and never return: both messages are retried, and the loop ends by itself."""
    handler = BlockingHandler()
    shutdown = Shutdown()
    fitness = Fitness(min_live_share=0.5, hung_exit_seconds=3600, hung_unhealthy_seconds=3600)
    consumer = _time_limited_consumer(aws_fleet, handler, shutdown, fitness)
    _send(aws_fleet, "hang-1", "hang-2")
    thread = threading.Thread(target=consumer.run)
    try:
        thread.start()
        thread.join(timeout=30)
        alive, hung = thread.is_alive(), consumer.threads_left_behind()
        back: set[str] = set()
        wait_until(
            lambda: back.update(m["Body"] for m in aws_fleet.receive_all(aws_fleet.urls.background)) or len(back) == 2,
            timeout=60,
            what="both messages back in the queue after their backoff",
        )
        redelivered = sorted(back)
    finally:
        handler.release.set()
        shutdown.request("test finished")
        thread.join(timeout=30)

    assert not alive
    assert EXIT_SLOTS_LOST == shutdown.exit_status
    assert 2 == hung
    assert ["hang-1", "hang-2"] == redelivered


def test_a_slot_held_past_its_deadline_fails_the_health_check_while_the_loop_turns(
    aws_fleet: AwsFleet, tmp_path: Path
) -> None:
    """The loop still touches its file, but writes why it is unhealthy, and the check reports it."""
    heartbeat = tmp_path / "worker.heartbeat"
    handler = BlockingHandler()
    shutdown = Shutdown()
    fitness = Fitness(min_live_share=0.0, hung_exit_seconds=3600, hung_unhealthy_seconds=0.0)
    consumer = _time_limited_consumer(aws_fleet, handler, shutdown, fitness, heartbeat_file=str(heartbeat))
    _send(aws_fleet, "hang")
    try:
        with consumer_running(consumer, shutdown):
            detail = wait_until(
                lambda: (report := check([heartbeat], 30, time.time())[1]).startswith("unhealthy: a job") and report,
                timeout=30,
                what="an unhealthy report",
            )
            handler.release.set()
            wait_until(lambda: check([heartbeat], 30, time.time())[0], timeout=30, what="healthy again")
    finally:
        handler.release.set()

    assert "past its deadline" in detail


def test_a_job_whose_log_put_outlasts_the_grace_period_is_settled_before_the_loop_returns(aws_fleet: AwsFleet) -> None:
    """The job returned but its settle gate never opens: at the grace end it is deleted, not left owned."""
    returned, shutdown = threading.Event(), Shutdown()

    def slow_log(_message: InboundMessage) -> Outcome:
        returned.set()
        return Outcome.done().settled_after(lambda _finish: None)  # a log put that never ends

    _send(aws_fleet, "finished")
    consumer = _consumer(aws_fleet, slow_log, shutdown, concurrency=1, shutdown_grace_seconds=0.5)
    thread = threading.Thread(target=consumer.run)
    with capture_logs() as logs:
        thread.start()
        wait_until(returned.is_set, timeout=10, what="the job to return")
        shutdown.request("SIGTERM")
        thread.join(timeout=30)

    [drained] = [entry for entry in logs if entry["event"] == "worker.drained"]
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)
    assert 0 == drained["still_owned"]
    assert 0 == consumer.abandoned_jobs


def test_the_returned_hook_hears_of_each_outcome_with_the_settler_s_last_attempt_rule(aws_fleet: AwsFleet) -> None:
    """The consumer wires the dispatcher's returns to DeliveryHooks.returned, on the job's own thread."""
    shutdown = Shutdown()
    heard: list[tuple[str, Outcome, bool, str]] = []

    class Hooks(NoHooks):
        def returned(self, lease: Lease, outcome: Outcome, is_last_attempt: LastAttempt) -> None:
            heard.append((lease.message.body, outcome, is_last_attempt(lease), threading.current_thread().name))

    _send(aws_fleet, "a")
    settings = aws_fleet.settings(BACKGROUND_JOB_SERVICE, receive_wait_seconds=1, max_receive_count=1)
    consumer = build_consumer(
        settings=settings,
        sqs=aws_fleet.sqs,
        queue_url=aws_fleet.urls.background,
        dlq_url=aws_fleet.urls.background_dlq,
        shutdown=shutdown,
        make_dispatcher=lambda: PoolDispatcher(lambda _message: Outcome.retry("boom"), settings.concurrency),
        hooks=Hooks(),
    )
    with consumer_running(consumer, shutdown):
        wait_until(lambda: heard, timeout=10, what="the job to return")

    body, outcome, last, thread_name = heard[0]
    assert ("a", Outcome.retry("boom"), True) == (body, outcome, last)
    assert thread_name.startswith("job")
