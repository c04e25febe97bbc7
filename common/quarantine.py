"""Quarantine: how a malformed message is parked in its DLQ, and how operators read it back.

The original body is kept byte for byte; the reason and provenance travel as message attributes so
that ``fleet dlq peek`` and the console show why it is there without parsing anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from common.inbound import InboundMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

ATTR_REASON: Final = "QuarantineReason"
ATTR_SOURCE_QUEUE: Final = "QuarantineSourceQueue"
ATTR_QUARANTINED_AT: Final = "QuarantinedAt"
ATTR_ORIGINAL_MESSAGE_ID: Final = "OriginalMessageId"
ATTR_ORIGINAL_RECEIVE_COUNT: Final = "OriginalReceiveCount"
QUARANTINE_ATTRIBUTES: Final = frozenset(
    {
        ATTR_REASON,
        ATTR_SOURCE_QUEUE,
        ATTR_QUARANTINED_AT,
        ATTR_ORIGINAL_MESSAGE_ID,
        ATTR_ORIGINAL_RECEIVE_COUNT,
    }
)
#: Operator redrive bookkeeping (``fleet redrive``): kept first, so loop prevention survives re-quarantine.
KEPT_FIRST: Final = ("RedriveCount", "RedrivenFrom")
#: SQS allows 10 attributes per message; ours take 5, the sender's keep the rest.
_MAX_ATTRIBUTES: Final = 10
_MAX_REASON_LENGTH: Final = 1000


def quarantine_attributes(
    message: InboundMessage, *, reason: str, source_queue: str
) -> dict[str, MessageAttributeValueTypeDef]:
    """Message attributes for the DLQ copy: ours first, then as many of the sender's as still fit."""
    ours = {
        ATTR_REASON: reason[:_MAX_REASON_LENGTH] or "unspecified",
        ATTR_SOURCE_QUEUE: source_queue,
        ATTR_QUARANTINED_AT: datetime.now(UTC).isoformat(timespec="milliseconds"),
        ATTR_ORIGINAL_MESSAGE_ID: message.message_id,
        ATTR_ORIGINAL_RECEIVE_COUNT: str(message.receive_count),
    }
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        name: {"DataType": "String", "StringValue": value} for name, value in ours.items()
    }
    senders = sorted(message.attributes.items(), key=lambda item: item[0] not in KEPT_FIRST)
    for name, value in senders:
        if len(attributes) >= _MAX_ATTRIBUTES:
            break
        if name not in attributes and value:
            attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes
