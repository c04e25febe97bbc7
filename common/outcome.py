"""What became of one delivery: the verdict a handler returns, which settlement then applies to SQS."""

from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def done(cls) -> Outcome:
        return cls(Verdict.DONE)

    @classmethod
    def retry(cls, reason: str) -> Outcome:
        return cls(Verdict.RETRY, reason)

    @classmethod
    def quarantine(cls, reason: str) -> Outcome:
        return cls(Verdict.QUARANTINE, reason)

    @classmethod
    def defer(cls, reason: str) -> Outcome:
        return cls(Verdict.DEFER, reason)
