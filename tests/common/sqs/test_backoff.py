"""Retry delays grow with the receive count, stay jittered, and never exceed the cap."""

from __future__ import annotations

import random

from common.sqs.backoff import Backoff


def test_delay_grows_with_each_attempt() -> None:
    """The fixed half of each step doubles, so every retry waits at least as long as the last one's floor."""
    backoff = Backoff(base_seconds=4, max_seconds=10_000, rng=random.Random(7))

    floors = [backoff.delay_for(attempt) for attempt in range(1, 8)]

    assert all(delay >= 2 * 2 ** (attempt - 1) for attempt, delay in enumerate(floors, start=1))
    assert floors[-1] > floors[0]


def test_delay_is_jittered_within_the_step() -> None:
    """Jitter spreads retries between half and all of the step."""
    backoff = Backoff(base_seconds=8, max_seconds=10_000, rng=random.Random(1))

    delays = {backoff.delay_for(3) for _ in range(200)}

    assert min(delays) >= 16
    assert max(delays) <= 32
    assert len(delays) > 5


def test_delay_never_exceeds_the_cap_or_sqs_maximum() -> None:
    """Huge receive counts stay within the configured cap and SQS's 12-hour limit."""
    assert Backoff(base_seconds=5, max_seconds=900).delay_for(10_000) <= 900
    assert Backoff(base_seconds=5, max_seconds=10**9).delay_for(10_000) <= 43_200
