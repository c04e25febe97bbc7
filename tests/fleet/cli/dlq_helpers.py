"""Putting messages into a DLQ the two ways the fleet does: quarantine, and the redrive policy."""

from __future__ import annotations

from typing import Any

from common.sqs.inbound import InboundMessage
from common.sqs.quarantine import quarantine_attributes


def quarantine(
    fleet: Any, alias: str, body: str, reason: str, *, original_message_id: str = "original-1", **sender_attributes: str
) -> str:
    """Park ``body`` in ``alias``-dlq as the settler does for a malformed message; return its DLQ MessageId."""
    original = InboundMessage(
        message_id=original_message_id,
        receipt_handle="r",
        body=body,
        receive_count=1,
        sent_timestamp_ms=0,
        attributes=sender_attributes,
    )
    attributes = quarantine_attributes(original, reason=reason, source_queue=fleet.urls[alias])
    return str(
        fleet.sqs.send_message(QueueUrl=fleet.urls[f"{alias}-dlq"], MessageBody=body, MessageAttributes=attributes)[
            "MessageId"
        ]
    )


def exhaust(fleet: Any, alias: str, body: str, **attributes: str) -> None:
    """Send ``body`` to the source queue and fail it past maxReceiveCount (1), so SQS moves it to the DLQ."""
    fleet.sqs.send_message(
        QueueUrl=fleet.urls[alias],
        MessageBody=body,
        MessageAttributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()},
    )
    fail_once_more(fleet, alias)


def fail_once_more(fleet: Any, alias: str) -> None:
    """Receive everything in the source queue and let it go back, past maxReceiveCount: into the DLQ."""
    while fleet.sqs.receive_message(QueueUrl=fleet.urls[alias], MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages"
    ):
        pass
