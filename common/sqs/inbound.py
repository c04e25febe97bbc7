"""One received SQS message, with the system attributes the fleet relies on already parsed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: Asked for on every ReceiveMessage call.
SYSTEM_ATTRIBUTES: Final = ("ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_timestamp_ms: int
    attributes: Mapping[str, str] = field(default_factory=dict)
    received_at: float = field(default_factory=time.monotonic)
    #: This delivery's run of its job as the job ledger's claim counted it (``attempts``): a busy copy, a
    #: release or a redrive costs a receive but is no run. None without a ledger: each receive is a run.
    ledger_attempt: int | None = None

    @property
    def attempt(self) -> int:
        """Which run of the job this delivery is: the ledger's count when it has one, else the receive count."""
        return self.ledger_attempt if self.ledger_attempt is not None else self.receive_count

    @classmethod
    def from_sqs(cls, raw: Mapping[str, Any]) -> InboundMessage:
        system = raw.get("Attributes", {})
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(system.get("ApproximateReceiveCount", "1")),
            sent_timestamp_ms=int(system.get("SentTimestamp", "0")),
            attributes={
                name: value["StringValue"]
                for name, value in raw.get("MessageAttributes", {}).items()
                if "StringValue" in value
            },
        )
