"""Hands extended leases to the ledger's hook on a thread of its own, so the heartbeat never waits on it.

The visibility heartbeat must extend every due delivery on time whatever DynamoDB does: one lease write
answered after 15 s (botocore allows about 40 s) used to hold the heartbeat, and with it the next
ChangeMessageVisibilityBatch, until the message became visible and a second run started (issue 32).
So the heartbeat only drops what it extended here and goes on; one daemon thread makes the hook calls,
one at a time. While a call is slow, later extensions pile up as one pending set (each delivery once,
its latest visibility end), so the next call carries them all and nothing queues without bound. A
slow or failing hook can cost a ledger lease, never a visibility extension.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from common.logging import get_logger

if TYPE_CHECKING:
    from common.sqs.in_flight import Lease

log = get_logger(__name__)
ExtendedHook = Callable[[Sequence["Lease"]], None]


class ExtensionRelay:
    """Calls ``hook`` off the caller's thread with every lease handed in since its last call."""

    def __init__(self, hook: ExtendedHook) -> None:
        self._hook = hook
        #: By receipt handle: a delivery extended twice while the hook was busy is passed once.
        self._pending: dict[str, Lease] = {}
        self._stopped = False
        self._condition = threading.Condition()
        #: Started by the first extension: a worker whose jobs are all short keeps no extra thread.
        self._thread = threading.Thread(target=self._run, name="ledger-leases", daemon=True)

    def submit(self, leases: Sequence[Lease]) -> None:
        """Never blocks on the hook: the leases wait for its next call."""
        with self._condition:
            if self._stopped:
                return
            for lease in leases:
                self._pending[lease.receipt_handle] = lease
            if not self._thread.is_alive():
                self._thread.start()
            self._condition.notify_all()

    def stop(self, timeout: float) -> None:
        """Stop calling the hook (a call in progress finishes on its own; the thread is a daemon)."""
        with self._condition:
            self._stopped = True
            self._pending.clear()
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            try:
                self._hook(batch)
            except Exception:  # a hook must not raise; if it does, the next extension tries again
                log.exception("visibility.extended_hook_failed", messages=len(batch))

    def _next(self) -> list[Lease] | None:
        with self._condition:
            self._condition.wait_for(lambda: self._stopped or bool(self._pending))
            if self._stopped:
                return None
            batch, self._pending = list(self._pending.values()), {}
            return batch
