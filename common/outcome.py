"""What became of one delivery: the verdict a handler returns, which settlement then applies to SQS."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


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
    #: For the job ledger (common/ledger_gate.py): how long the job ran and its JSON result, if any.
    #: Not part of the verdict, so two successes compare equal whatever they returned.
    duration_ms: int | None = field(default=None, compare=False)
    result_json: str | None = field(default=None, compare=False)

    @classmethod
    def done(cls, *, duration_ms: int | None = None, result_json: str | None = None) -> Outcome:
        return cls(Verdict.DONE, duration_ms=duration_ms, result_json=result_json)

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        return cls(Verdict.RETRY, reason)

    @classmethod
    def quarantine(cls, reason: str) -> Outcome:
        return cls(Verdict.QUARANTINE, reason)

    @classmethod
    def defer(cls, reason: str) -> Outcome:
        return cls(Verdict.DEFER, reason)
