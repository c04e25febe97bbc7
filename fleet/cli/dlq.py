"""Reading a DLQ without consuming it: ``fleet dlq peek``, and the message view redrive shares.

Messages are received with a short visibility timeout, held invisible while the peek pages through the
queue (so that each is seen once), then made visible again at once with ChangeMessageVisibilityBatch.
A peek is still a receive: SQS adds one to each message's ApproximateReceiveCount.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from common.sqs.quarantine import (
    ATTR_ORIGINAL_MESSAGE_ID,
    ATTR_ORIGINAL_RECEIVE_COUNT,
    ATTR_QUARANTINED_AT,
    ATTR_REASON,
    ATTR_REDRIVE_COUNT,
    ATTR_SOURCE_QUEUE,
)
from fleet.cli.errors import OpsError
from fleet.cli.render import from_millis, table, timestamp

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef, MessageTypeDef

SQS_BATCH: Final = 10
BODY_PREVIEW: Final = 60


@dataclass(frozen=True, slots=True)
class DlqMessage:
    """A DLQ message as operators read it; ``attributes`` are its String/Number message attributes."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, str]
    raw_attributes: Mapping[str, Any]
    receive_count: int
    sent_at: datetime | None

    @classmethod
    def from_sqs(cls, raw: MessageTypeDef) -> DlqMessage:
        system = raw.get("Attributes", {})
        custom = raw.get("MessageAttributes", {})
        return cls(
            message_id=raw.get("MessageId", ""),
            receipt_handle=raw.get("ReceiptHandle", ""),
            body=raw.get("Body", ""),
            attributes={name: value["StringValue"] for name, value in custom.items() if "StringValue" in value},
            raw_attributes=dict(custom),
            receive_count=int(system.get("ApproximateReceiveCount", "0")),
            sent_at=from_millis(system.get("SentTimestamp")),
        )

    @property
    def quarantine_reason(self) -> str:
        """Why main_job or background_job parked it; empty when the redrive policy moved it."""
        return self.attributes.get(ATTR_REASON, "")

    @property
    def redrive_count(self) -> int:
        """The RedriveCount the message carries, for display; redrive itself counts by its journal."""
        value = self.attributes.get(ATTR_REDRIVE_COUNT, "0")
        return int(value) if value.isdigit() else 0

    @property
    def receives(self) -> int:
        """Receives before it reached the DLQ if quarantine recorded them, else SQS's count before ours.

        The receive that read this message is not counted; earlier peeks are (SQS counts every receive).
        """
        recorded = self.attributes.get(ATTR_ORIGINAL_RECEIVE_COUNT, "")
        return int(recorded) if recorded.isdigit() else max(0, self.receive_count - 1)

    def view(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "reason": self.quarantine_reason or None,
            "how": "quarantined" if self.quarantine_reason else "redrive policy",
            "receives": self.receives,
            "redrive_count": self.redrive_count,
            "first_seen": timestamp(self.sent_at),
            "quarantined_at": self.attributes.get(ATTR_QUARANTINED_AT),
            "source_queue": self.attributes.get(ATTR_SOURCE_QUEUE),
            "original_message_id": self.attributes.get(ATTR_ORIGINAL_MESSAGE_ID),
            "body": self.body,
        }


Predicate = Callable[[DlqMessage], bool]


def parse_filter(text: str) -> Predicate:
    """``NAME=VALUE`` (attribute equals) or ``NAME~TEXT`` (attribute contains); NAME ``body`` is the body."""
    for operator in ("~", "="):
        name, found, value = text.partition(operator)
        if found and name:
            return _predicate(name.strip(), operator, value)
    raise OpsError(f"--filter {text!r}: expected NAME=VALUE or NAME~TEXT (NAME: an attribute, or body)")


def _predicate(name: str, operator: str, value: str) -> Predicate:
    def matches(message: DlqMessage) -> bool:
        actual = message.body if name == "body" else message.attributes.get(name)
        if actual is None:
            return False
        return actual == value if operator == "=" else value in actual

    return matches


def matches_all(filters: Sequence[Predicate], message: DlqMessage) -> bool:
    return all(check(message) for check in filters)


def receive_batch(
    sqs: SQSClient, queue_url: str, *, count: int, visibility_seconds: int, wait_seconds: int
) -> list[DlqMessage]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(SQS_BATCH, count)),
        VisibilityTimeout=visibility_seconds,
        WaitTimeSeconds=wait_seconds,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    return [DlqMessage.from_sqs(raw) for raw in response.get("Messages", [])]


def release(sqs: SQSClient, queue_url: str, messages: Sequence[DlqMessage]) -> list[str]:
    """Make ``messages`` visible again; return the IDs SQS would not release (they reappear later)."""
    failed: list[str] = []
    for first in range(0, len(messages), SQS_BATCH):
        chunk = messages[first : first + SQS_BATCH]
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": message.receipt_handle, "VisibilityTimeout": 0}
            for index, message in enumerate(chunk)
        ]
        try:
            response = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError):
            failed += [message.message_id for message in chunk]
            continue
        failed += [chunk[int(entry["Id"])].message_id for entry in response.get("Failed", [])]
    return failed


@contextmanager
def held(sqs: SQSClient, queue_url: str) -> Iterator[dict[str, DlqMessage]]:
    """Received messages by MessageId; whatever is still held at the end is made visible again."""
    holding: dict[str, DlqMessage] = {}
    try:
        yield holding
    finally:
        release(sqs, queue_url, list(holding.values()))


def peek(
    sqs: SQSClient,
    queue_url: str,
    *,
    limit: int,
    filters: Sequence[Predicate] = (),
    visibility_seconds: int = 30,
    wait_seconds: int = 1,
) -> list[DlqMessage]:
    """Up to ``limit`` messages matching ``filters``, each once, all visible again on return."""
    shown: list[DlqMessage] = []
    seen: set[str] = set()
    with held(sqs, queue_url) as holding:
        while len(shown) < limit:
            batch = receive_batch(
                sqs,
                queue_url,
                count=limit - len(shown),
                visibility_seconds=visibility_seconds,
                wait_seconds=wait_seconds,
            )
            fresh = [message for message in batch if message.message_id not in seen]
            holding.update((message.message_id, message) for message in batch)
            if not fresh:
                break
            seen.update(message.message_id for message in fresh)
            shown += [message for message in fresh if matches_all(filters, message)][: limit - len(shown)]
    return shown


def more_note(sqs: SQSClient, queue_url: str, *, shown: int, filtered: bool) -> str | None:
    """A line saying the queue holds more than was shown, or None when the peek showed everything.

    SQS's counts are approximate (GetQueueAttributes), hence "about"; in-flight messages count too,
    since another reader's receive hides a message only for a while.
    """
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    total = int(attributes.get("ApproximateNumberOfMessages", "0")) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
    )
    if total <= shown:
        return None
    what = "matching message(s) shown" if filtered else "message(s) shown"
    return f"{shown} {what}; the queue holds about {total}: --max {total} shows more"


def render(messages: Sequence[DlqMessage]) -> str:
    if not messages:
        return "no messages\n"
    rows = []
    for message in messages:
        view = message.view()
        reason = view["reason"] or "(moved by the redrive policy: maxReceiveCount)"
        preview = message.body if len(message.body) <= BODY_PREVIEW else message.body[: BODY_PREVIEW - 3] + "..."
        rows.append(
            [
                message.message_id,
                str(message.receives),
                str(message.redrive_count),
                view["first_seen"],
                reason,
                preview,
            ]
        )
    return table(["MESSAGE ID", "RECEIVES", "REDRIVES", "FIRST SEEN", "REASON", "BODY"], rows, right=frozenset({1, 2}))


def to_json(messages: Sequence[DlqMessage]) -> str:
    return json.dumps([message.view() for message in messages], indent=2) + "\n"
