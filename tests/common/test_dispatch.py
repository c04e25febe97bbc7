"""The pool dispatcher's batch window: fuller receives on a busy pool, never a wait on an idle one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from common.dispatch import PoolDispatcher
from common.in_flight import InFlight
from common.inbound import InboundMessage
from common.settlement import Outcome
from tests.conftest import AwsFleet
from tests.waiting import wait_until

#: Long enough that only the batch filling up, never the window running out, can end the wait.
WINDOW_LONGER_THAN_ANY_TEST = 120.0


class HeldJobs:
    """A handler whose jobs each run until the test lets that one finish."""

    def __init__(self) -> None:
        self._releases: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def __call__(self, message: InboundMessage) -> Outcome:
        self._event(message.body).wait(timeout=60)
        return Outcome.done()

    def finish(self, body: str) -> None:
        self._event(body).set()

    def _event(self, body: str) -> threading.Event:
        with self._lock:
            return self._releases.setdefault(body, threading.Event())


@contextmanager
def pool(fleet: AwsFleet, jobs: HeldJobs, window: float, bodies: list[str]) -> Iterator[PoolDispatcher]:
    """A two-slot pool already running one held job per body, drained afterwards."""
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody=body)
    messages = [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.background)]
    dispatcher = PoolDispatcher(jobs, concurrency=2, batch_window_seconds=window)
    dispatcher.dispatch(InFlight(30).open(messages))
    try:
        yield dispatcher
    finally:
        for body in bodies:
            jobs.finish(body)
        dispatcher.cancel_unstarted()
        dispatcher.wait_until_idle(timeout=30)
        dispatcher.abandon()


def test_an_idle_pool_receives_without_waiting_for_the_window(aws_fleet: AwsFleet) -> None:
    """With every slot free the batch is already full, so a long window costs nothing."""
    with pool(aws_fleet, HeldJobs(), WINDOW_LONGER_THAN_ANY_TEST, []) as dispatcher:
        assert dispatcher.wait_for_free_slot(timeout=0)
        assert 2 == dispatcher.free_slots()


def test_a_busy_pool_waits_in_its_window_for_a_fuller_receive(aws_fleet: AwsFleet) -> None:
    """One slot freeing does not trigger a receive while the other job may finish within the window."""
    jobs = HeldJobs()
    with pool(aws_fleet, jobs, WINDOW_LONGER_THAN_ANY_TEST, ["a", "b"]) as dispatcher:
        jobs.finish("a")
        wait_until(lambda: dispatcher.free_slots() == 1, timeout=10, what="job a to finish")
        free_when_ready: list[int] = []
        waiter = threading.Thread(
            target=lambda: free_when_ready.append(dispatcher.wait_for_free_slot(1) and dispatcher.free_slots())
        )
        waiter.start()
        jobs.finish("b")
        waiter.join(timeout=30)

        assert [2] == free_when_ready


def test_the_window_is_bounded_so_a_long_job_never_holds_back_receiving(aws_fleet: AwsFleet) -> None:
    """When the window runs out, the consumer receives for the slots it has."""
    jobs = HeldJobs()
    with pool(aws_fleet, jobs, 0.05, ["a", "b"]) as dispatcher:
        jobs.finish("a")

        assert dispatcher.wait_for_free_slot(timeout=10)
        assert 1 == dispatcher.free_slots()


def test_a_full_pool_reports_no_free_slot_when_the_wait_times_out(aws_fleet: AwsFleet) -> None:
    """The consumer loop wakes to touch its liveness file rather than blocking until a job ends."""
    with pool(aws_fleet, HeldJobs(), WINDOW_LONGER_THAN_ANY_TEST, ["a", "b"]) as dispatcher:
        assert not dispatcher.wait_for_free_slot(timeout=0.05)
