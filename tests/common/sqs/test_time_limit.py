"""Time limits: an attempt past its deadline is settled as timed out from outside its thread, its slot lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from common.sqs.dispatch import PoolDispatcher
from common.sqs.in_flight import InFlight, Lease
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome, Verdict
from common.sqs.time_limit import Attempt, Fitness, current_attempt, limit_current_attempt
from tests.conftest import AwsFleet
from tests.waiting import wait_until

NO_EXIT = Fitness(min_live_share=0.0, hung_exit_seconds=3600, hung_unhealthy_seconds=3600)


class Jobs:
    """Bodies ``hang`` block until released; ``quick`` returns at once; ``limit:<s>`` sets its own limit, then hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.returned: list[str] = []

    def __call__(self, message: InboundMessage) -> Outcome:
        self.started.append(message.body)
        if message.body.startswith("limit:"):
            limit_current_attempt(float(message.body.split(":")[1]))
        if message.body != "quick":
            self.release.wait(timeout=60)
        self.returned.append(message.body)
        return Outcome.done()


@contextmanager
def limited_pool(
    fleet: AwsFleet, jobs: Jobs, limit: float, *, concurrency: int = 2, fitness: Fitness = NO_EXIT
) -> Iterator[tuple[PoolDispatcher, InFlight]]:
    dispatcher = PoolDispatcher(
        jobs, concurrency=concurrency, batch_window_seconds=0, time_limit_seconds=limit, fitness=fitness
    )
    in_flight = InFlight(30)
    try:
        yield dispatcher, in_flight
    finally:
        jobs.release.set()
        wait_until(lambda: dispatcher.slot_report().lost == 0, timeout=30, what="hung threads to return")
        dispatcher.cancel_unstarted()
        dispatcher.wait_until_idle(timeout=30)
        dispatcher.abandon()


def _dispatch(fleet: AwsFleet, dispatcher: PoolDispatcher, in_flight: InFlight, *bodies: str) -> list[Lease]:
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody=body)
    messages = [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.background)]
    leases = in_flight.open(messages)
    dispatcher.dispatch(leases)
    return leases


def _settled(lease: Lease) -> Outcome | None:
    return lease.outcome


def test_an_attempt_past_its_limit_is_settled_as_timed_out_while_its_thread_still_runs(aws_fleet: AwsFleet) -> None:
    """At the deadline the lease gets a retry verdict naming the limit, though the job has not returned."""
    jobs = Jobs()
    with limited_pool(aws_fleet, jobs, limit=0.3) as (dispatcher, in_flight):
        [lease] = _dispatch(aws_fleet, dispatcher, in_flight, "hang")
        outcome = wait_until(lambda: _settled(lease), timeout=10, what="the attempt to time out")

        assert Outcome.retry("timed out after 0.3 s") == outcome
        assert ["hang"] == jobs.started
        assert [] == jobs.returned
        assert 1 == dispatcher.slot_report().lost


def test_the_lost_slot_stays_taken_and_the_other_slots_keep_running_jobs(aws_fleet: AwsFleet) -> None:
    """A hung thread holds its pool thread: one slot fewer, and the remaining slot still runs new jobs."""
    jobs = Jobs()
    with limited_pool(aws_fleet, jobs, limit=0.3) as (dispatcher, in_flight):
        [hung] = _dispatch(aws_fleet, dispatcher, in_flight, "hang")
        wait_until(lambda: _settled(hung), timeout=10, what="the attempt to time out")
        free_with_a_lost_slot = dispatcher.free_slots()
        [quick] = _dispatch(aws_fleet, dispatcher, in_flight, "quick")
        outcome = wait_until(lambda: _settled(quick), timeout=10, what="the quick job to finish")

        assert 1 == free_with_a_lost_slot
        assert Verdict.DONE is outcome.verdict


def test_a_late_return_is_discarded_and_its_slot_comes_back(aws_fleet: AwsFleet) -> None:
    """The hung job returning later changes nothing about its settled outcome; its slot is live again."""
    jobs = Jobs()
    with limited_pool(aws_fleet, jobs, limit=0.3) as (dispatcher, in_flight):
        [lease] = _dispatch(aws_fleet, dispatcher, in_flight, "hang")
        timed_out = wait_until(lambda: _settled(lease), timeout=10, what="the attempt to time out")
        jobs.release.set()
        wait_until(lambda: jobs.returned == ["hang"], timeout=10, what="the hung job to return")
        wait_until(lambda: dispatcher.slot_report().lost == 0, timeout=10, what="the slot to come back")

        assert timed_out == lease.outcome
        assert 2 == dispatcher.free_slots()


def test_a_job_that_returns_before_its_limit_succeeds(aws_fleet: AwsFleet) -> None:
    """A limit only matters to attempts that reach it."""
    jobs = Jobs()
    with limited_pool(aws_fleet, jobs, limit=30) as (dispatcher, in_flight):
        [lease] = _dispatch(aws_fleet, dispatcher, in_flight, "quick")
        outcome = wait_until(lambda: _settled(lease), timeout=10, what="the job to finish")

        assert Verdict.DONE is outcome.verdict
        assert 0 == dispatcher.slot_report().lost


def test_a_handler_sets_its_own_limit_counted_from_its_start(aws_fleet: AwsFleet) -> None:
    """The default limit is long; the job type's own, set by the handler once it knows its type, applies."""
    jobs = Jobs()
    with limited_pool(aws_fleet, jobs, limit=600) as (dispatcher, in_flight):
        [lease] = _dispatch(aws_fleet, dispatcher, in_flight, "limit:0.2")
        outcome = wait_until(lambda: _settled(lease), timeout=10, what="the job's own limit to pass")

        assert Outcome.retry("timed out after 0.2 s") == outcome


def test_the_timeout_handler_picks_the_outcome_and_sees_the_attempt(aws_fleet: AwsFleet) -> None:
    """The service reports the timeout (its events, metrics) and decides the verdict."""
    seen: list[tuple[str, float]] = []

    def on_timeout(message: InboundMessage, attempt: Attempt) -> Outcome:
        seen.append((message.body, attempt.limit_seconds))
        return Outcome.retry("reported")

    jobs = Jobs()
    dispatcher = PoolDispatcher(jobs, 1, 0, time_limit_seconds=0.2, on_timeout=on_timeout, fitness=NO_EXIT)
    try:
        [lease] = _dispatch(aws_fleet, dispatcher, InFlight(30), "hang")
        outcome = wait_until(lambda: _settled(lease), timeout=10, what="the attempt to time out")
    finally:
        jobs.release.set()
        wait_until(lambda: dispatcher.slot_report().lost == 0, timeout=30, what="the hung thread to return")
        dispatcher.abandon()

    assert Outcome.retry("reported") == outcome
    assert [("hang", 0.2)] == seen


@pytest.mark.parametrize(("share", "expect_exit"), [(0.5, False), (0.6, True)])
def test_the_worker_is_unfit_once_lost_slots_leave_too_few_live(
    aws_fleet: AwsFleet, share: float, expect_exit: bool
) -> None:
    """One slot of two lost leaves a live share of 0.5: enough at 0.5, too few at 0.6."""
    jobs = Jobs()
    fitness = Fitness(min_live_share=share, hung_exit_seconds=3600, hung_unhealthy_seconds=3600)
    with limited_pool(aws_fleet, jobs, limit=0.2, fitness=fitness) as (dispatcher, in_flight):
        [lease] = _dispatch(aws_fleet, dispatcher, in_flight, "hang")
        wait_until(lambda: _settled(lease), timeout=10, what="the attempt to time out")

        assert expect_exit == (dispatcher.slot_report().exit_reason is not None)


def test_a_slot_hung_past_its_margin_makes_the_worker_unhealthy_then_unfit() -> None:
    """Past the health margin the check should fail; past the exit limit the worker should go."""
    fitness = Fitness(min_live_share=0.0, hung_exit_seconds=100, hung_unhealthy_seconds=10)
    hung = Attempt(started=0.0, limit_seconds=5.0)

    assert (None, None) == (fitness.unhealthy_reason([hung], now=14.0), fitness.exit_reason(10, [hung], now=14.0))
    assert fitness.unhealthy_reason([hung], now=15.0) is not None
    assert fitness.exit_reason(10, [hung], now=104.0) is None
    assert fitness.exit_reason(10, [hung], now=105.0) is not None


def test_outside_a_limited_attempt_there_is_nothing_to_limit() -> None:
    """A thread no dispatcher started (main_job's batch, a test) has no attempt and no deadline."""
    assert current_attempt() is None
    assert limit_current_attempt(10) is None
