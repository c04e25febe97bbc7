"""Settling deliveries: delete after success, retry through visibility, quarantine the malformed.

The loop thread settles finished leases in batches between receives (and the thread of a job that
overran the grace period settles its own lease), so a burst of short jobs costs one DeleteMessageBatch
per ten messages. Nothing here re-sends a message to retry it: retries are a visibility change, so the
queue's receive count and redrive policy stay truthful and a message that keeps failing still reaches
its DLQ.

Every lease ends in exactly one of: deleted, handed back (retry, release), moved to the DLQ (quarantine,
or the last attempt failed: sent there with its reason, then deleted), or given up (its receipt handle
expired, or SQS refused the delete until the delivery's visibility ran out). Only the job's outcome and
SQS's answers decide which; the log lines written on the way are side channels.

The last attempt is decided on runs actually started (``Lease.attempts``, the job ledger's count), not on
receives: a release, a busy copy or a stale buffer costs a receive but no attempt. MAX_ATTEMPTS runs
make the last attempt; the queue's maxReceiveCount (MAX_RECEIVE_COUNT) stays a high backstop for poison
messages that never get as far as a run, and a delivery on its last allowed receive is a last attempt
too, so the worker moves it with its reason rather than leave it to the redrive without one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common.logging import get_logger
from common.sqs.backoff import Backoff
from common.sqs.hooks import DeliveryHooks, NoHooks
from common.sqs.in_flight import SQS_BATCH_LIMIT, InFlight, Lease
from common.sqs.outcome import Outcome, Verdict
from common.sqs.quarantine import quarantine_attributes
from common.sqs.send_batch import send_message_batch

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

__all__ = ["Outcome", "Settler", "Verdict"]

log = get_logger(__name__)
#: Failed-entry codes that mean this receipt handle can never be deleted: the delivery is over.
_EXPIRED_HANDLE_CODES = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"})


class Settler:
    """Applies the outcomes of finished leases to SQS; keeps failed deletes to try again next time."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        dlq_url: str,
        in_flight: InFlight,
        backoff: Backoff,
        max_receive_count: int,
        max_attempts: int | None = None,
        hooks: DeliveryHooks | None = None,
    ) -> None:
        """``max_attempts`` runs end a job (None: ``max_receive_count``, the queue's redrive backstop)."""
        self._sqs = sqs
        self._hooks = hooks or NoHooks()
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._in_flight = in_flight
        self._backoff = backoff
        self._max_receive_count = max_receive_count
        self._max_attempts = max_attempts if max_attempts is not None else max_receive_count
        self._undeleted: list[Lease] = []
        # The loop settles; after it stopped, so may the thread of a job that overran the grace period.
        self._lock = threading.Lock()

    def pending(self) -> int:
        """Deletes that failed and will be tried again at the next :meth:`settle`."""
        with self._lock:
            return len(self._undeleted)

    def settle(self, finished: Sequence[Lease]) -> None:
        """Apply each finished lease's outcome, and retry the deletes that failed before."""
        with self._lock:
            leases, self._undeleted = [*self._undeleted, *finished], []
            self._apply(leases)

    def release(self, leases: Sequence[Lease]) -> None:
        """Make unstarted deliveries visible again at once, so another worker picks them up now."""
        with self._lock:
            self._hooks.releasing(leases)  # a claim on a job that never started is given back first
            self._hand_back([(lease, 0) for lease in leases], event="message.released")

    def _apply(self, leases: list[Lease]) -> None:
        # The ledger first: a crash between the two then leaves "succeeded" behind, never a lost success.
        self._hooks.settling(leases, self._is_last_attempt)
        by_verdict: dict[Verdict, list[Lease]] = {verdict: [] for verdict in Verdict}
        for lease in leases:
            by_verdict[(lease.outcome or Outcome.retry("no outcome recorded")).verdict].append(lease)
        # A deferred lease reaching settlement (the dispatcher gave it up at shutdown) is a retry.
        retries = [*by_verdict[Verdict.RETRY], *by_verdict[Verdict.DEFER]]
        exhausted = [lease for lease in retries if self._is_last_attempt(lease)]
        delivered, undeliverable = self._send_to_dlq([*by_verdict[Verdict.QUARANTINE], *exhausted])
        for chunk in _chunks([*by_verdict[Verdict.DONE], *delivered]):
            self._delete(chunk)
        handed_back = [lease for lease in retries if not self._is_last_attempt(lease)] + undeliverable
        self._hand_back([(lease, self._retry_delay(lease)) for lease in handed_back], event="message.retry_scheduled")

    def _retry_delay(self, lease: Lease) -> int:
        # A give-up whose DLQ send failed comes straight back, so the next receive tries the move again.
        if self._is_last_attempt(lease):
            return 0
        outcome = lease.outcome
        if outcome is not None and outcome.delay_seconds is not None:
            return outcome.delay_seconds  # it knows when to come back (a busy copy: the holder's lease end)
        return self._backoff.delay_for(lease.message.receive_count)

    def is_last_attempt(self, lease: Lease) -> bool:
        """Whether this delivery's failure hands the job to the DLQ (for an outcome recorded early)."""
        return self._is_last_attempt(lease)

    def _is_last_attempt(self, lease: Lease) -> bool:
        """MAX_ATTEMPTS runs started (the ledger's count; without a ledger, the receive count), or the
        queue's last allowed receive (past it, the redrive would move the message without a reason)."""
        if lease.message.receive_count >= self._max_receive_count:
            return True
        attempts = lease.attempts if lease.attempts is not None else lease.message.receive_count
        return attempts >= self._max_attempts

    def _dlq_reason(self, lease: Lease) -> str:
        outcome = lease.outcome
        if outcome is not None and outcome.verdict is Verdict.QUARANTINE:
            return outcome.reason
        attempts = lease.attempts if lease.attempts is not None else lease.message.receive_count
        if attempts < self._max_attempts:  # the backstop, not the runs: say which limit it was
            return f"receive limit reached ({lease.message.receive_count} receives, {attempts} runs): {_reason(lease)}"
        return f"attempts exhausted: {_reason(lease)}"

    def _send_to_dlq(self, leases: list[Lease]) -> tuple[list[Lease], list[Lease]]:
        """Park quarantined messages in the DLQ, packed by size so that one large body fails alone."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "MessageBody": lease.message.body,
                "MessageAttributes": quarantine_attributes(
                    lease.message, reason=self._dlq_reason(lease), source_queue=self._queue_url
                ),
            }
            for index, lease in enumerate(leases)
        ]
        failed = send_message_batch(self._sqs, self._dlq_url, entries) if entries else {}
        delivered: list[Lease] = []
        undeliverable: list[Lease] = []
        for index, lease in enumerate(leases):
            fields = {"message_id": lease.message.message_id, **lease.log_fields}
            if str(index) in failed:
                # Retried through visibility; if it never fits, the redrive policy parks it without our reason.
                log.error("message.quarantine_failed", **fields, error=failed[str(index)])
                undeliverable.append(lease)
            elif lease.outcome is not None and lease.outcome.verdict is Verdict.QUARANTINE:
                log.error("message.quarantined", **fields, reason=_reason(lease))
                delivered.append(lease)
            else:
                log.warning(
                    "message.dead_letter_handoff",
                    **fields,
                    receive_count=lease.message.receive_count,
                    attempts=lease.attempts if lease.attempts is not None else lease.message.receive_count,
                    max_attempts=self._max_attempts,
                    max_receive_count=self._max_receive_count,
                    reason=_reason(lease),
                    detail="attempts exhausted: moved to the DLQ with its reason by the worker",
                )
                delivered.append(lease)
        return delivered, undeliverable

    def _delete(self, chunk: list[Lease]) -> None:
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": lease.receipt_handle} for index, lease in enumerate(chunk)
        ]
        failed = _call_batch(lambda: self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries), chunk)
        now = self._in_flight.clock()
        over: list[Lease] = []
        for index, lease in enumerate(chunk):
            error = failed.get(str(index))
            if error is None:
                over.append(lease)
            elif error.get("SenderFault") or error.get("Code") in _EXPIRED_HANDLE_CODES:
                # Resending cannot help: the handle expired (someone may be running it again) or was refused.
                log.warning(
                    "message.delete_failed",
                    message_id=lease.message.message_id,
                    **lease.log_fields,
                    code=error.get("Code"),
                    possible_duplicate=True,
                )
                over.append(lease)
            elif now < self._delete_deadline(lease):
                self._undeleted.append(lease)
            else:
                log.error(
                    "message.delete_failed",
                    message_id=lease.message.message_id,
                    **lease.log_fields,
                    error=error,
                    will_be_redelivered=True,
                )
                over.append(lease)
        self._in_flight.close(over)

    def _delete_deadline(self, lease: Lease) -> float:
        """Keep trying until the delivery becomes visible again, and never for more than one visibility
        timeout after the job finished (the heartbeat keeps extending an unsettled lease meanwhile)."""
        finished = lease.finished_at if lease.finished_at is not None else self._in_flight.clock()
        return min(lease.visible_again_at, finished + self._in_flight.visibility_timeout)

    def _hand_back(self, changes: list[tuple[Lease, int]], *, event: str) -> None:
        """Visibility changes that end a lease; under the heartbeat's lock, so no extension overtakes them."""
        for start in range(0, len(changes), SQS_BATCH_LIMIT):
            chunk = changes[start : start + SQS_BATCH_LIMIT]
            with self._in_flight.visibility_lock:
                self._in_flight.close(lease for lease, _ in chunk)
                self._change_visibility(chunk, event=event)

    def _change_visibility(self, changes: list[tuple[Lease, int]], *, event: str) -> None:
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": lease.receipt_handle, "VisibilityTimeout": seconds}
            for index, (lease, seconds) in enumerate(changes)
        ]
        leases = [lease for lease, _ in changes]
        failed = _call_batch(
            lambda: self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries), leases
        )
        for index, (lease, seconds) in enumerate(changes):
            fields = {"message_id": lease.message.message_id, **lease.log_fields}
            error = failed.get(str(index))
            if error is not None:
                failure = "message.release_failed" if event == "message.released" else "message.retry_failed"
                log.warning(failure, **fields, error=error)
            else:
                log.info(event, **fields, visible_in_seconds=seconds, receive_count=lease.message.receive_count)


def _reason(lease: Lease) -> str:
    return lease.outcome.reason if lease.outcome is not None else ""


def _chunks(leases: list[Lease]) -> list[list[Lease]]:
    return [leases[start : start + SQS_BATCH_LIMIT] for start in range(0, len(leases), SQS_BATCH_LIMIT)]


def _call_batch(call: Callable[[], Any], leases: Sequence[Lease]) -> dict[str, dict[str, Any]]:
    """Run a batch call and return its failed entries by Id; a failed call fails every entry, retriably."""
    try:
        response = call()
    except (BotoCoreError, ClientError) as error:
        code = error.response["Error"].get("Code", "") if isinstance(error, ClientError) else type(error).__name__
        return {str(index): {"Code": code, "Message": str(error), "SenderFault": False} for index in range(len(leases))}
    return {entry["Id"]: dict(entry) for entry in response.get("Failed", [])}
