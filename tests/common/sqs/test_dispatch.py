"""The pool dispatcher: fuller receives on a busy pool, a bounded receive-ahead buffer, never a wait on an idle one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from common.sqs.dispatch import PoolDispatcher
from common.sqs.in_flight import InFlight, Lease
from common.sqs.inbound import InboundMessage
from common.sqs.settlement import Outcome
from tests.conftest import AwsFleet
from tests.waiting import wait_until

#: Long enough that only the batch filling up, never the window running out, can end the wait.
WINDOW_LONGER_THAN_ANY_TEST = 120.0


class HeldJobs:
    """A handler whose jobs each run until the test lets that one finish."""

    def __init__(self) -> None:
        self._releases: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.started: list[str] = []

    def __call__(self, message: InboundMessage) -> Outcome:
        self.started.append(message.body)
        self._event(message.body).wait(timeout=60)
        return Outcome.done()

    def finish(self, body: str) -> None:
        self._event(body).set()

    def _event(self, body: str) -> threading.Event:
        with self._lock:
            return self._releases.setdefault(body, threading.Event())


@contextmanager
def pool(
    fleet: AwsFleet, jobs: HeldJobs, window: float, bodies: list[str], horizon: float = 0.0
) -> Iterator[PoolDispatcher]:
    """A two-slot pool already running one held job per body, drained afterwards (no receive-ahead by default)."""
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody=body)
    messages = [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.background)]
    dispatcher = PoolDispatcher(jobs, concurrency=2, batch_window_seconds=window, ahead_horizon_seconds=horizon)
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


class Clock:
    """A clock the test moves by hand, so bounds are checked without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _leases(in_flight: InFlight, *bodies: str) -> list[Lease]:
    return in_flight.open([InboundMessage(f"id-{body}", f"rh-{body}", body, 1, 0) for body in bodies])


@contextmanager
def busy_pool(clock: Clock, in_flight: InFlight) -> Iterator[tuple[PoolDispatcher, HeldJobs]]:
    """A one-slot pool that has run one quick job (so it knows jobs are short) and now runs a held one."""
    jobs = HeldJobs()
    dispatcher = PoolDispatcher(jobs, concurrency=1, ahead_horizon_seconds=60.0, clock=clock)
    jobs.finish("quick")
    dispatcher.dispatch(_leases(in_flight, "quick"))
    assert dispatcher.wait_until_idle(timeout=30)
    dispatcher.dispatch(_leases(in_flight, "held"))
    wait_until(lambda: "held" in jobs.started, timeout=10, what="the held job to start")
    try:
        yield dispatcher, jobs
    finally:
        for body in ("held", "next", "later"):
            jobs.finish(body)
        dispatcher.cancel_unstarted()
        dispatcher.wait_until_idle(timeout=30)
        dispatcher.abandon()


def test_a_busy_pool_of_short_jobs_has_room_to_receive_ahead() -> None:
    """With its slot busy and jobs known to be short, the pool asks for the next message before the slot frees."""
    with busy_pool(Clock(), InFlight(30)) as (dispatcher, _jobs):
        assert 1 == dispatcher.free_slots()
        assert dispatcher.wait_for_free_slot(timeout=0)


def test_messages_received_ahead_are_open_leases_covered_by_the_heartbeat() -> None:
    """A buffered message is an open lease in InFlight, so the visibility heartbeat walks it."""
    in_flight = InFlight(30)
    with busy_pool(Clock(), in_flight) as (dispatcher, _jobs):
        ahead = _leases(in_flight, "next")
        dispatcher.dispatch(ahead)

        assert ahead == dispatcher.buffered()
        assert all(in_flight.is_open(lease) for lease in ahead)
        assert 0 == dispatcher.free_slots()


def test_a_buffered_message_starts_as_soon_as_the_slot_frees() -> None:
    """The next message is ready when the running job ends: no receive between the two jobs."""
    in_flight = InFlight(30)
    with busy_pool(Clock(), in_flight) as (dispatcher, jobs):
        dispatcher.dispatch(_leases(in_flight, "next"))
        jobs.finish("held")

        wait_until(lambda: not dispatcher.buffered(), timeout=10, what="the buffered job to start")
        assert [] == dispatcher.take_stale()


def test_a_long_job_does_not_hold_buffered_messages_beyond_the_bound() -> None:
    """After the buffer bound a message that found no slot is handed back, and no more is received ahead."""
    clock, in_flight = Clock(), InFlight(30)
    with busy_pool(clock, in_flight) as (dispatcher, _jobs):
        ahead = _leases(in_flight, "next")
        dispatcher.dispatch(ahead)
        assert [] == dispatcher.take_stale()

        clock.now += 7.5  # the bound: a quarter of the 30 s visibility timeout, capped at 5 s
        stale = dispatcher.take_stale()

        assert ahead == stale
        assert [] == dispatcher.buffered()
        assert 0 == dispatcher.free_slots()  # the held job is now a long one: nothing more is taken ahead


def test_a_ten_minute_job_stops_the_pool_receiving_ahead() -> None:
    """A running job far past the mean job time is not counted as a slot about to free."""
    clock = Clock()
    with busy_pool(clock, InFlight(30)) as (dispatcher, _jobs):
        clock.now += 600.0

        assert 0 == dispatcher.free_slots()


def test_cancel_returns_every_buffered_message_for_release() -> None:
    """On shutdown the buffer is emptied into the leases to release at once, and nothing more starts."""
    in_flight = InFlight(30)
    with busy_pool(Clock(), in_flight) as (dispatcher, jobs):
        ahead = _leases(in_flight, "next")
        dispatcher.dispatch(ahead)

        assert ahead == dispatcher.cancel_unstarted()
        jobs.finish("held")
        assert dispatcher.wait_until_idle(timeout=10)
        assert [] == dispatcher.buffered()


class GatedJobs:
    """A handler whose outcomes settle only when the test opens their gate, as a job log's put would."""

    def __init__(self, gate_fails: bool = False) -> None:
        self.started: list[str] = []
        self.gates: dict[str, Callable[[], None]] = {}
        self._gate_fails = gate_fails

    def __call__(self, message: InboundMessage) -> Outcome:
        self.started.append(message.body)
        return Outcome.done().settled_after(lambda finish: self._hold(message.body, finish))

    def _hold(self, body: str, finish: Callable[[], None]) -> None:
        self.gates[body] = finish
        if self._gate_fails:
            raise RuntimeError("the gate broke")


def test_a_gated_outcome_frees_the_slot_but_settles_only_when_its_gate_opens() -> None:
    """The next job starts while the last one's log ships; the lease finishes, and the pool idles, after."""
    jobs, in_flight = GatedJobs(), InFlight(30)
    dispatcher = PoolDispatcher(jobs, concurrency=1)
    first, second = _leases(in_flight, "a", "b")
    dispatcher.dispatch([first, second])

    wait_until(lambda: {"a", "b"} <= jobs.gates.keys(), timeout=10, what="both jobs to end in one slot")
    assert (None, None) == (first.outcome, second.outcome)
    assert not dispatcher.wait_until_idle(timeout=0)

    jobs.gates["a"]()
    jobs.gates["a"]()  # a gate that calls twice settles once
    assert (Outcome.done(), None) == (first.outcome, second.outcome)
    assert [first] == in_flight.take_finished()
    assert not dispatcher.wait_until_idle(timeout=0)

    jobs.gates["b"]()
    assert dispatcher.wait_until_idle(timeout=10)
    dispatcher.abandon()


def test_a_failing_gate_settles_at_once() -> None:
    """A bug in the gate costs the wait, never the message's settlement."""
    jobs, in_flight = GatedJobs(gate_fails=True), InFlight(30)
    dispatcher = PoolDispatcher(jobs, concurrency=1)
    (lease,) = _leases(in_flight, "a")
    dispatcher.dispatch([lease])

    assert dispatcher.wait_until_idle(timeout=10)
    assert Outcome.done() == lease.outcome
    dispatcher.abandon()


def test_a_job_s_outcome_reaches_the_returned_hook_before_its_gate_opens() -> None:
    """The ledger hears of the outcome the moment the job returns, while its log still ships (issue 32, item 7)."""
    jobs, in_flight = GatedJobs(), InFlight(30)
    dispatcher = PoolDispatcher(jobs, concurrency=1)
    returned: list[tuple[Lease, Outcome]] = []
    dispatcher.watch_returns(lambda lease, outcome: returned.append((lease, outcome)))
    (lease,) = _leases(in_flight, "a")
    dispatcher.dispatch([lease])

    wait_until(lambda: "a" in jobs.gates, timeout=10, what="the job to return")

    assert [(lease, Outcome.done())] == returned
    assert None is lease.outcome  # not finished: its delete still waits for the gate
    jobs.gates["a"]()
    assert dispatcher.wait_until_idle(timeout=10)
    dispatcher.abandon()


def test_a_failing_returned_hook_costs_nothing_but_its_write() -> None:
    """A bug in the hook is logged; the lease still finishes with the job's outcome."""
    jobs, in_flight = GatedJobs(), InFlight(30)
    dispatcher = PoolDispatcher(jobs, concurrency=1)

    def broken(_lease: Lease, _outcome: Outcome) -> None:
        raise RuntimeError("the hook broke")

    dispatcher.watch_returns(broken)
    (lease,) = _leases(in_flight, "a")
    dispatcher.dispatch([lease])
    wait_until(lambda: "a" in jobs.gates, timeout=10, what="the job to return")
    jobs.gates["a"]()

    assert Outcome.done() == lease.outcome
    assert dispatcher.wait_until_idle(timeout=10)
    dispatcher.abandon()


def test_abandoning_the_pool_finishes_a_returned_job_still_waiting_on_its_gate() -> None:
    """At the grace period's end a job whose log put is slow settles now, not after the process exits."""
    jobs, in_flight = GatedJobs(), InFlight(30)
    dispatcher = PoolDispatcher(jobs, concurrency=1)
    (lease,) = _leases(in_flight, "a")
    dispatcher.dispatch([lease])
    wait_until(lambda: "a" in jobs.gates, timeout=10, what="the job to return")

    assert [] == dispatcher.abandon()

    assert Outcome.done() == lease.outcome
    assert [lease] == in_flight.take_finished()
    jobs.gates["a"]()  # the log shipped after all: the lease was finished once, nothing more happens
    assert [] == in_flight.take_finished()


def test_a_buffered_message_whose_visibility_ran_out_is_released_not_started() -> None:
    """After a freeze past the visibility timeout a buffered message may be another worker's: it never runs here."""
    in_flight_clock = Clock()
    in_flight = InFlight(30, clock=in_flight_clock)
    with busy_pool(Clock(), in_flight) as (dispatcher, jobs):
        ahead = in_flight.open([InboundMessage("id-next", "rh-next", "next", 1, 0, received_at=in_flight_clock.now)])
        dispatcher.dispatch(ahead)

        in_flight_clock.now += 31.0  # frozen: the buffer's own bound has not passed on the pool's clock
        jobs.finish("held")
        wait_until(lambda: not dispatcher.buffered(), timeout=10, what="the slot to free")

        assert not dispatcher.wait_for_free_slot(timeout=0)  # the stale lease is released before any receive
        assert ahead == dispatcher.take_stale()
        assert "next" not in jobs.started


def test_a_buffered_message_with_too_little_visibility_left_is_released_not_started() -> None:
    """Less visibility left than one heartbeat interval: the job could become visible while it runs."""
    in_flight_clock = Clock()
    in_flight = InFlight(30, clock=in_flight_clock)
    with busy_pool(Clock(), in_flight) as (dispatcher, jobs):
        ahead = in_flight.open([InboundMessage("id-next", "rh-next", "next", 1, 0, received_at=in_flight_clock.now)])
        dispatcher.dispatch(ahead)

        in_flight_clock.now += 26.0  # 4 s left, under the heartbeat's 5 s interval
        jobs.finish("held")
        wait_until(lambda: not dispatcher.buffered(), timeout=10, what="the slot to free")

        assert ahead == dispatcher.take_stale()
        assert "next" not in jobs.started
