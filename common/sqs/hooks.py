"""Extension points in a delivery's life, for what must move in step with SQS (the job ledger).

The consumer calls :meth:`DeliveryHooks.admit` between receiving a batch and dispatching it; the pool
calls :meth:`DeliveryHooks.returned` on the job's own thread the moment a job returns (before its log
ships and its delete is batched, so a crash in that gap cannot make a finished job run again); the
heartbeat calls :meth:`DeliveryHooks.extended` after extending visibilities, on a thread of its own so
that a slow hook never delays the next extension; and the settler calls :meth:`DeliveryHooks.settling`
before applying outcomes to SQS. Except ``returned`` (one job), each call gets a whole batch, so a hook
can batch its own requests the way the SQS calls are batched. Hooks must not raise: a failure in them
is theirs to handle, and settlement goes on regardless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from common.sqs.in_flight import Lease
from common.sqs.outcome import Outcome

LastAttempt = Callable[[Lease], bool]


class DeliveryHooks(Protocol):
    def admit(self, leases: Sequence[Lease]) -> list[Lease]:
        """Return the leases to run; the others must have been finished with an outcome."""
        ...

    def returned(self, lease: Lease, outcome: Outcome, is_last_attempt: LastAttempt) -> None:
        """This delivery's job just returned ``outcome`` (on the job's thread; the lease is not finished yet)."""
        ...

    def extended(self, leases: Sequence[Lease]) -> None:
        """These deliveries' visibility was just extended (until each one's ``visible_again_at``)."""
        ...

    def settling(self, leases: Sequence[Lease], is_last_attempt: LastAttempt) -> None:
        """These finished leases are about to be applied to SQS (deleted, retried, quarantined)."""
        ...

    def releasing(self, leases: Sequence[Lease]) -> None:
        """These unstarted deliveries are about to be made visible again (shutdown, a stale buffer)."""
        ...


class NoHooks:
    """main_job's and every ledger-less worker's hooks: run everything, record nothing."""

    def admit(self, leases: Sequence[Lease]) -> list[Lease]:
        return list(leases)

    def returned(self, lease: Lease, outcome: Outcome, is_last_attempt: LastAttempt) -> None:
        return

    def extended(self, leases: Sequence[Lease]) -> None:
        return

    def settling(self, leases: Sequence[Lease], is_last_attempt: LastAttempt) -> None:
        return

    def releasing(self, leases: Sequence[Lease]) -> None:
        return
