"""Retry delays for failed messages, applied as a visibility timeout (never by re-sending).

Exponential in the receive count, with "equal jitter": half the step is fixed, half random. The fixed
half makes each retry wait longer than the last; the random half spreads a burst of failures so they
do not all return at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from common.settings import MAX_VISIBILITY_SECONDS


@dataclass(frozen=True, slots=True)
class Backoff:
    base_seconds: float
    max_seconds: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay_for(self, receive_count: int) -> int:
        """Seconds to keep a message hidden after its ``receive_count``-th attempt failed."""
        exponent = max(0, receive_count - 1)
        step = min(self.max_seconds, self.base_seconds * 2.0 ** min(exponent, 32))
        delay = step / 2 + self.rng.uniform(0, step / 2)
        return max(0, min(MAX_VISIBILITY_SECONDS, round(delay)))
