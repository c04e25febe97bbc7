"""A lease hook that holds every call until the test lets it answer: a ledger write DynamoDB answers late."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from common.sqs.in_flight import Lease


class HeldHook:
    """Records each call's deliveries (their bodies); every call waits for ``answer``, at most 30 s."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.answer = threading.Event()

    def __call__(self, leases: Sequence[Lease]) -> None:
        self.calls.append(sorted(lease.message.body for lease in leases))
        self.answer.wait(timeout=30)
