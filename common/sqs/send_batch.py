"""SendMessageBatch within SQS's limits, so that one oversized or invalid entry never fails its neighbours.

SQS refuses a whole SendMessageBatch call when one entry is too large, or when the entries together
exceed the per-call payload limit. Entries are therefore packed by size as well as by count, and a call
refused for its content is split into one call per entry: the refusal then lands on the entry it is
about (a sender fault, which the caller quarantines) and its neighbours go through. Found by the
reliability suite's bad-input corpus: one trigger near the size limit held up, and finally dead-lettered,
every trigger received in the same batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_ENTRIES: Final = 10
#: Bytes per call: 256 KiB, the limit of a queue created with Terraform's default max_message_size
#: (newer queues accept 1 MiB; a larger entry still goes out, alone).
MAX_PAYLOAD_BYTES: Final = 262_144
#: Error codes that are about what was sent, not about the service or the caller's permissions.
_CONTENT_ERRORS: Final = frozenset({"InvalidParameterValue", "BatchRequestTooLong", "InvalidMessageContents"})

#: A failed entry: ``Code``, ``Message`` and ``SenderFault`` (True when resending cannot help).
Failure = dict[str, Any]


def entry_size(entry: SendMessageBatchRequestEntryTypeDef) -> int:
    """What SQS counts against its size limit: the body and every attribute's name, type and value."""
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value["DataType"].encode()) + len(value.get("StringValue", "").encode())
    return size


def pack(entries: Sequence[SendMessageBatchRequestEntryTypeDef]) -> list[list[SendMessageBatchRequestEntryTypeDef]]:
    """Consecutive chunks of at most ten entries and, unless one entry alone is larger, the payload budget."""
    chunks: list[list[SendMessageBatchRequestEntryTypeDef]] = []
    current: list[SendMessageBatchRequestEntryTypeDef] = []
    current_size = 0
    for entry in entries:
        size = entry_size(entry)
        if current and (len(current) == MAX_ENTRIES or current_size + size > MAX_PAYLOAD_BYTES):
            chunks.append(current)
            current, current_size = [], 0
        current.append(entry)
        current_size += size
    if current:
        chunks.append(current)
    return chunks


def send_message_batch(
    sqs: SQSClient, queue_url: str, entries: Sequence[SendMessageBatchRequestEntryTypeDef]
) -> dict[str, Failure]:
    """Send every entry; return the failed ones by ``Id`` (a transient error fails a whole chunk)."""
    failures: dict[str, Failure] = {}
    for chunk in pack(entries):
        failures.update(_send(sqs, queue_url, chunk))
    return failures


def _send(sqs: SQSClient, queue_url: str, chunk: list[SendMessageBatchRequestEntryTypeDef]) -> dict[str, Failure]:
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)
    except ClientError as error:
        code = str(error.response["Error"].get("Code", ""))
        message = str(error.response["Error"].get("Message", error))
        if code.rsplit(".", 1)[-1] not in _CONTENT_ERRORS:
            return {entry["Id"]: {"Code": code, "Message": message, "SenderFault": False} for entry in chunk}
        if len(chunk) == 1:
            return {chunk[0]["Id"]: {"Code": code, "Message": message, "SenderFault": True}}
        failures: dict[str, Failure] = {}
        for entry in chunk:
            failures.update(_send(sqs, queue_url, [entry]))
        return failures
    except BotoCoreError as error:
        failure = {"Code": type(error).__name__, "Message": str(error), "SenderFault": False}
        return {entry["Id"]: dict(failure) for entry in chunk}
    return {entry["Id"]: dict(entry) for entry in response.get("Failed", [])}
