"""Settling messages: delete after success, retry through visibility, quarantine the malformed.

Outcomes are buffered and applied in batches of up to ten by one flusher thread, so a burst of short
jobs costs one DeleteMessageBatch per ten messages instead of one DeleteMessage each. Nothing here
re-sends a message to retry it: retries are a visibility change, so the queue's receive count and
redrive policy stay truthful and a message that keeps failing still reaches its DLQ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.backoff import Backoff
from common.in_flight import SQS_BATCH_LIMIT, InFlight
from common.inbound import InboundMessage
from common.logging import get_logger
from common.quarantine import quarantine_attributes
from common.send_batch import send_message_batch

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

log = get_logger(__name__)
_MAX_FLUSH_ATTEMPTS = 3
_EXPIRED_HANDLE_CODES = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"})


class Verdict(Enum):
    DONE = "done"
    RETRY = "retry"
    QUARANTINE = "quarantine"


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


@dataclass(slots=True)
class _Pending:
    message: InboundMessage
    outcome: Outcome
    attempts: int = 0


class Settler:
    """Applies outcomes to SQS in batches from a single background thread."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        dlq_url: str,
        in_flight: InFlight,
        backoff: Backoff,
        max_receive_count: int,
        flush_interval: float = 0.2,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._in_flight = in_flight
        self._backoff = backoff
        self._max_receive_count = max_receive_count
        self._flush_interval = flush_interval
        self._pending: list[_Pending] = []
        self._closing = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="settler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Apply everything still pending, then stop the flusher."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout=60)

    def settle(self, message: InboundMessage, outcome: Outcome) -> None:
        with self._condition:
            self._pending.append(_Pending(message, outcome))
            self._condition.notify_all()

    def _requeue(self, item: _Pending) -> None:
        """Try ``item`` again in the next flush, keeping its attempt count (a fresh one would retry forever)."""
        with self._condition:
            self._pending.append(item)
            self._condition.notify_all()

    def release(self, messages: Sequence[InboundMessage]) -> None:
        """Make unstarted messages visible again at once, so another worker picks them up now."""
        for start in range(0, len(messages), SQS_BATCH_LIMIT):
            chunk = messages[start : start + SQS_BATCH_LIMIT]
            self._change_visibility(
                [(message, 0) for message in chunk], event="message.released", failure_event="message.release_failed"
            )
        self._in_flight.discard(messages)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._closing or bool(self._pending))
                self._condition.wait_for(
                    lambda: self._closing or len(self._pending) >= SQS_BATCH_LIMIT,
                    timeout=self._flush_interval,
                )
                batch, self._pending = self._pending, []
                closing = self._closing
            if batch:
                self._flush(batch)
            if closing and not self._has_pending():
                return

    def _has_pending(self) -> bool:
        with self._condition:
            return bool(self._pending)

    def _flush(self, batch: list[_Pending]) -> None:
        quarantined = [item for item in batch if item.outcome.verdict is Verdict.QUARANTINE]
        delivered, undeliverable = self._send_to_dlq(quarantined)
        deletes = [item for item in batch if item.outcome.verdict is Verdict.DONE] + delivered
        retries = [item for item in batch if item.outcome.verdict is Verdict.RETRY] + undeliverable
        for start in range(0, len(deletes), SQS_BATCH_LIMIT):
            self._delete(deletes[start : start + SQS_BATCH_LIMIT])
        for start in range(0, len(retries), SQS_BATCH_LIMIT):
            chunk = retries[start : start + SQS_BATCH_LIMIT]
            self._change_visibility(
                [(item.message, self._retry_delay(item.message)) for item in chunk],
                event="message.retry_scheduled",
                failure_event="message.retry_failed",
            )
            self._in_flight.discard(item.message for item in chunk)

    def _retry_delay(self, message: InboundMessage) -> int:
        # On the last allowed attempt, hand the message straight back so the redrive policy moves it
        # to the DLQ on its next receive instead of after a long, pointless backoff.
        if message.receive_count >= self._max_receive_count:
            return 0
        return self._backoff.delay_for(message.receive_count)

    def _send_to_dlq(self, items: list[_Pending]) -> tuple[list[_Pending], list[_Pending]]:
        """Park quarantined messages in the DLQ, packed by size so that one large body fails alone."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "MessageBody": item.message.body,
                "MessageAttributes": quarantine_attributes(
                    item.message, reason=item.outcome.reason, source_queue=self._queue_url
                ),
            }
            for index, item in enumerate(items)
        ]
        failed = send_message_batch(self._sqs, self._dlq_url, entries) if entries else {}
        delivered: list[_Pending] = []
        undeliverable: list[_Pending] = []
        for index, item in enumerate(items):
            if str(index) in failed:
                # Retried through visibility; if it never fits, the redrive policy parks it without our reason.
                log.error("message.quarantine_failed", message_id=item.message.message_id, error=failed[str(index)])
                undeliverable.append(item)
            else:
                log.error("message.quarantined", message_id=item.message.message_id, reason=item.outcome.reason)
                delivered.append(item)
        return delivered, undeliverable

    def _delete(self, chunk: list[_Pending]) -> None:
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": item.message.receipt_handle} for index, item in enumerate(chunk)
        ]
        failed = self._call_batch(
            partial(self._sqs.delete_message_batch, QueueUrl=self._queue_url, Entries=entries), len(chunk)
        )
        settled = []
        for index, item in enumerate(chunk):
            error = failed.get(str(index))
            if error is None:
                settled.append(item.message)
            elif error.get("Code") in _EXPIRED_HANDLE_CODES:
                log.warning(
                    "message.delete_failed",
                    message_id=item.message.message_id,
                    code=error.get("Code"),
                    possible_duplicate=True,
                )
                settled.append(item.message)
            elif item.attempts + 1 < _MAX_FLUSH_ATTEMPTS and error.get("Code") != "SenderFault":
                item.attempts += 1
                self._requeue(item)
            else:
                log.error(
                    "message.delete_failed",
                    message_id=item.message.message_id,
                    error=error,
                    will_be_redelivered=True,
                )
                settled.append(item.message)
        self._in_flight.discard(settled)

    def _change_visibility(self, changes: list[tuple[InboundMessage, int]], *, event: str, failure_event: str) -> None:
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": message.receipt_handle, "VisibilityTimeout": seconds}
            for index, (message, seconds) in enumerate(changes)
        ]
        failed = self._call_batch(
            partial(self._sqs.change_message_visibility_batch, QueueUrl=self._queue_url, Entries=entries),
            len(changes),
        )
        for index, (message, seconds) in enumerate(changes):
            error = failed.get(str(index))
            if error is None:
                log.info(
                    event,
                    message_id=message.message_id,
                    visible_in_seconds=seconds,
                    receive_count=message.receive_count,
                )
            else:
                log.warning(failure_event, message_id=message.message_id, error=error)

    @staticmethod
    def _call_batch(call: Callable[[], Any], size: int) -> dict[str, dict[str, Any]]:
        """Run a batch call and return its failed entries by Id; a failed call fails every entry."""
        try:
            response = call()
        except (BotoCoreError, ClientError) as error:
            code = error.response["Error"].get("Code", "") if isinstance(error, ClientError) else type(error).__name__
            return {str(index): {"Code": code, "Message": str(error)} for index in range(size)}
        return {entry["Id"]: dict(entry) for entry in response.get("Failed", [])}
