"""The messages this process currently owns, and the heartbeat that keeps long jobs invisible.

A job that outlives its visibility timeout would be delivered again while still running. The
heartbeat extends, in one batched call, every owned message that has used half its visibility, so a
short job costs no extra request and a long job costs one per half-timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from common.inbound import InboundMessage
from common.logging import get_logger

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

log = get_logger(__name__)
SQS_BATCH_LIMIT = 10


@dataclass(slots=True)
class _Owned:
    message: InboundMessage
    visible_again_at: float


class InFlight:
    """Thread-safe registry of owned messages with the time each becomes visible again."""

    def __init__(self, visibility_timeout: int) -> None:
        self.visibility_timeout = visibility_timeout
        self._owned: dict[str, _Owned] = {}
        self._lock = threading.Lock()

    def add(self, messages: Iterable[InboundMessage]) -> None:
        with self._lock:
            for message in messages:
                self._owned[message.message_id] = _Owned(message, message.received_at + self.visibility_timeout)

    def discard(self, messages: Iterable[InboundMessage]) -> None:
        with self._lock:
            for message in messages:
                self._owned.pop(message.message_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._owned)

    def due_for_extension(self, now: float) -> list[InboundMessage]:
        horizon = now + self.visibility_timeout / 2
        with self._lock:
            return [owned.message for owned in self._owned.values() if owned.visible_again_at <= horizon]

    def mark_extended(self, messages: Iterable[InboundMessage], now: float) -> None:
        with self._lock:
            for message in messages:
                owned = self._owned.get(message.message_id)
                if owned is not None:
                    owned.visible_again_at = now + self.visibility_timeout


class VisibilityHeartbeat:
    """A daemon thread that extends the visibility of long-running messages."""

    def __init__(self, *, sqs: SQSClient, queue_url: str, in_flight: InFlight) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._in_flight = in_flight
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-heartbeat", daemon=True)
        self.extensions = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(0.5, self._in_flight.visibility_timeout / 6)
        while not self._stopped.wait(interval):
            self.extend_due(time.monotonic())

    def extend_due(self, now: float) -> None:
        due = self._in_flight.due_for_extension(now)
        for start in range(0, len(due), SQS_BATCH_LIMIT):
            self._extend(due[start : start + SQS_BATCH_LIMIT], now)

    def _extend(self, batch: list[InboundMessage], now: float) -> None:
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "ReceiptHandle": message.receipt_handle,
                "VisibilityTimeout": self._in_flight.visibility_timeout,
            }
            for index, message in enumerate(batch)
        ]
        try:
            response = self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            log.warning("visibility.extend_failed", error=str(error), messages=len(batch))
            return
        failed = {entry["Id"]: entry for entry in response.get("Failed", [])}
        extended = [message for index, message in enumerate(batch) if str(index) not in failed]
        self._in_flight.mark_extended(extended, now)
        self.extensions += len(extended)
        for index, entry in failed.items():
            log.warning(
                "visibility.extend_failed",
                message_id=batch[int(index)].message_id,
                code=entry.get("Code"),
                possible_duplicate=True,
            )
        if extended:
            log.info("visibility.extended", messages=len(extended), seconds=self._in_flight.visibility_timeout)
