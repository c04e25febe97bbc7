"""The outage breaker: half-open, one probe at a time, backoff on a failed probe, closed by the first success."""

from __future__ import annotations

from common.job_log.breaker import FIRST_PROBE_SECONDS, OPEN_AFTER_FAILURES, OutageBreaker, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _fail(breaker: OutageBreaker, times: int) -> None:
    for _ in range(times):
        ticket = breaker.allow()
        assert ticket is not None
        breaker.failed(ticket)


def _opened(cooldown: float = 30.0) -> tuple[OutageBreaker, Clock]:
    clock = Clock()
    breaker = OutageBreaker(cooldown, clock=clock)
    _fail(breaker, OPEN_AFTER_FAILURES)
    assert breaker.is_open()
    return breaker, clock


def test_one_failure_among_successes_leaves_it_closed() -> None:
    """A call that failed after its retries is a fault, not an outage: every job keeps shipping."""
    breaker = OutageBreaker(30.0, clock=Clock())
    for _ in range(10):
        _fail(breaker, OPEN_AFTER_FAILURES - 1)
        ticket = breaker.allow()
        assert ticket is not None
        breaker.succeeded(ticket)

    assert not breaker.is_open()


def test_failures_in_a_row_open_it() -> None:
    """A sustained outage: the OPEN_AFTER_FAILURES-th failure in a row opens it, and nothing passes until due."""
    breaker = OutageBreaker(30.0, clock=Clock())
    _fail(breaker, OPEN_AFTER_FAILURES - 1)
    assert not breaker.is_open()

    _fail(breaker, 1)

    assert breaker.is_open()
    assert breaker.allow() is None


def test_an_open_breaker_lets_one_probe_through_when_due() -> None:
    """Before the probe is due nothing passes; then exactly one shipment at a time."""
    breaker, clock = _opened()

    assert breaker.allow() is None
    clock.now += FIRST_PROBE_SECONDS
    probe = breaker.allow()
    assert probe is not None
    assert probe.probe
    assert breaker.allow() is None


def test_a_successful_probe_closes_the_breaker() -> None:
    """Delivery resumes with the first answer, not a cooldown later."""
    breaker, clock = _opened()
    clock.now += FIRST_PROBE_SECONDS
    probe = breaker.allow()
    assert probe is not None

    breaker.succeeded(probe)

    assert not breaker.is_open()
    assert breaker.allow() is not None


def test_failed_probes_back_off_up_to_the_cooldown() -> None:
    """Each failed probe doubles the wait for the next, never beyond LOGS_OUTAGE_COOLDOWN_SECONDS."""
    breaker, clock = _opened(cooldown=5.0)
    clock.now += FIRST_PROBE_SECONDS
    seen = []
    for expected in (2.0, 4.0, 5.0, 5.0):
        probe = breaker.allow()
        assert probe is not None
        breaker.failed(probe)
        clock.now += expected - 0.01
        seen.append(breaker.allow() is None)
        clock.now += 0.01
    assert [True] * 4 == seen
    assert breaker.allow() is not None


def test_a_late_failure_from_before_the_outage_does_not_push_the_probe_back() -> None:
    """Shipments let through while closed that fail later leave the probe schedule alone."""
    breaker, clock = _opened()
    clock.now += FIRST_PROBE_SECONDS / 2
    breaker.failed(Ticket(probe=False))
    clock.now += FIRST_PROBE_SECONDS / 2

    assert breaker.allow() is not None
