"""What became of one delivery: the verdict a handler returns, which settlement then applies to SQS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from common.ledger.progress import Progress

#: Takes the call that settles the delivery and makes it once a side channel of the job has caught up
#: (its log is shipped), within a bound of its own; until then the job's slot is free but its message
#: is not settled.
SettleGate = Callable[[Callable[[], None]], None]


class Verdict(Enum):
    DONE = "done"
    RETRY = "retry"
    QUARANTINE = "quarantine"
    #: Not settled yet: the worker keeps the delivery (heartbeated) and runs it again in-process after a
    #: bounded backoff, receiving nothing meanwhile. For failures of a downstream the whole batch shares
    #: (main_job's SendMessageBatch), where a visibility retry would only burn the receive count.
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    reason: str = ""
    #: For the job ledger (common/ledger/gate.py): how long the job ran and its JSON result, if any.
    #: Not part of the verdict, so two successes compare equal whatever they returned.
    duration_ms: int | None = field(default=None, compare=False)
    result_json: str | None = field(default=None, compare=False)
    #: Set by a handler whose job still has output in flight when it returns (see SettleGate).
    settle_after: SettleGate | None = field(default=None, compare=False, repr=False)
    #: A DONE verdict for a job that stopped because an operator cancelled it: deleted, recorded ``cancelled``.
    cancelled: bool = field(default=False, compare=False)
    #: The job's latest progress report, written with the outcome (common/ledger/progress.py).
    progress: Progress | None = field(default=None, compare=False)
    #: A RETRY that knows when to come back (a busy copy: when the holder's lease ends), instead of the backoff.
    delay_seconds: int | None = field(default=None, compare=False)

    def with_progress(self, progress: Progress | None) -> Outcome:
        return self if progress is None else replace(self, progress=progress)

    def settled_after(self, gate: SettleGate) -> Outcome:
        return replace(self, settle_after=gate)

    @classmethod
    def done(cls, *, duration_ms: int | None = None, result_json: str | None = None) -> Outcome:
        return cls(Verdict.DONE, duration_ms=duration_ms, result_json=result_json)

    @classmethod
    def stopped_on_cancel(cls, *, duration_ms: int | None = None) -> Outcome:
        """The job stopped on an operator's cancel: nothing to retry, the message is deleted."""
        return cls(Verdict.DONE, "cancelled", duration_ms=duration_ms, cancelled=True)

    @classmethod
    def retry(cls, reason: str, *, delay_seconds: int | None = None) -> Outcome:
        return cls(Verdict.RETRY, reason, delay_seconds=delay_seconds)

    @classmethod
    def quarantine(cls, reason: str) -> Outcome:
        return cls(Verdict.QUARANTINE, reason)

    @classmethod
    def defer(cls, reason: str) -> Outcome:
        return cls(Verdict.DEFER, reason)
