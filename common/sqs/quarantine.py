"""Quarantine: how a malformed message is parked in its DLQ, and how operators read it back.

The original body is kept byte for byte; the reason and provenance travel as message attributes so
that ``fleet dlq peek`` and the console show why it is there without parsing anything.

Fleet-owned attribute names (ours here, and ``fleet redrive``'s bookkeeping) are never taken from the
message: anyone who may send to a queue may set any attribute, and a sender's ``RedriveCount=99`` or
``QuarantineReason`` must not pass for the fleet's. They are stripped, not carried; the other sender
attributes are kept as far as SQS's limit of 10 allows. ``fleet redrive`` keeps its loop count in its
journal, keyed by the copies it sent, so the count survives re-quarantine without trusting an attribute.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from common.sqs.inbound import InboundMessage

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
#: ``fleet redrive`` stamps these on the copies it sends back (fleet/cli/redrive.py).
ATTR_REDRIVE_COUNT: Final = "RedriveCount"
ATTR_REDRIVEN_FROM: Final = "RedrivenFrom"
#: Names only the fleet writes; a message's own attributes by these names are dropped from its DLQ copy.
FLEET_OWNED_ATTRIBUTES: Final = QUARANTINE_ATTRIBUTES | {ATTR_REDRIVE_COUNT, ATTR_REDRIVEN_FROM}
#: SQS allows 10 attributes per message; ours take 5, the sender's keep the rest.
_MAX_ATTRIBUTES: Final = 10
_MAX_REASON_LENGTH: Final = 1000


def quarantine_attributes(
    message: InboundMessage, *, reason: str, source_queue: str
) -> dict[str, MessageAttributeValueTypeDef]:
    """Message attributes for the DLQ copy: ours, then as many of the sender's as still fit.

    The sender's attributes with a fleet-owned name are left out (see the module docstring).
    """
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
    for name, value in message.attributes.items():
        if len(attributes) >= _MAX_ATTRIBUTES:
            break
        if name not in FLEET_OWNED_ATTRIBUTES and value:
            attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes
