"""An operator's cancel request: one conditional UpdateItem on the job's ledger item, nothing else.

The write sets ``status = cancelled`` with who, why and when, under the condition that the job has not
reached a final state (``succeeded``, ``dead``) and is not cancelled already. It needs no prior read and
works for every other case in the same single write:

- a job ID main_job has not created yet: the item is created ``cancelled``, with its ``by-day`` key
  (``queuedDay``, from the job ID, ``if_not_exists`` like every creating write), so listings find it;
  main_job's ``queued`` write keeps an existing status (``if_not_exists``), so the job stays cancelled
  and its claim is refused;
- a queued or failed job: its next claim is refused and the message deleted unrun;
- a running job: its next lease extension is refused (it is no longer ``running``), which tells the
  worker, and the job's context, within about half a visibility timeout.

A refusal comes with the item's old image (``ReturnValuesOnConditionCheckFailure=ALL_OLD``, documented
for UpdateItem in the DynamoDB API reference), so the answer names the final state at no extra read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from common.ledger import schema
from common.ledger.client import LedgerUnavailable, iso_timestamp
from common.ledger.days import queued_day
from common.ledger.schema import JobStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_DESERIALIZER = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class CancelAnswer:
    """``accepted``: this request cancelled the job; otherwise ``status`` is the state that refused it."""

    accepted: bool
    #: The job's state before the request (empty when the ledger had no item for it).
    status: str
    #: The refusing item's fields as plain values (empty when accepted).
    item: Mapping[str, Any]


def request_cancel(
    dynamodb: DynamoDBClient,
    table: str,
    job_id: str,
    *,
    by: str,
    reason: str,
    retention_days: int = schema.DEFAULT_RETENTION_DAYS,
    now: float | None = None,
) -> CancelAnswer:
    """Cancel ``job_id`` unless it succeeded, died or was cancelled already: exactly one UpdateItem."""
    moment = time.time() if now is None else now
    stamp = iso_timestamp(moment)
    try:
        response = dynamodb.update_item(
            TableName=table,
            Key={schema.ATTR_JOB_ID: {"S": job_id}},
            UpdateExpression=(
                "SET #status = :cancelled, #requested = :now, #by = :by, #reason = :reason,"
                " #updated = :now, #expires = :expires, #day = if_not_exists(#day, :day)"
            ),
            ConditionExpression="attribute_not_exists(#status) OR NOT #status IN (:succeeded, :dead, :cancelled)",
            ExpressionAttributeNames={
                "#status": schema.ATTR_STATUS,
                "#requested": schema.ATTR_CANCEL_REQUESTED_AT,
                "#by": schema.ATTR_CANCELLED_BY,
                "#reason": schema.ATTR_CANCEL_REASON,
                "#updated": schema.ATTR_UPDATED_AT,
                "#expires": schema.ATTR_EXPIRES_AT,
                "#day": schema.ATTR_QUEUED_DAY,
            },
            ExpressionAttributeValues={
                ":cancelled": {"S": JobStatus.CANCELLED},
                ":succeeded": {"S": JobStatus.SUCCEEDED},
                ":dead": {"S": JobStatus.DEAD},
                ":now": {"S": stamp},
                ":by": {"S": by[:200] or "unknown"},
                ":reason": {"S": reason[: schema.MAX_REASON_CHARS]},
                ":expires": {"N": str(int(moment) + retention_days * 86_400)},
                ":day": {"S": queued_day(job_id, moment)},
            },
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise LedgerUnavailable(f"UpdateItem on {table}: {error}") from error
        old = _plain(getattr(error, "response", {}).get("Item", {}))
        return CancelAnswer(accepted=False, status=str(old.get(schema.ATTR_STATUS, "")), item=old)
    except BotoCoreError as error:
        raise LedgerUnavailable(f"UpdateItem on {table}: {error}") from error
    before = _plain(response.get("Attributes", {}))
    return CancelAnswer(accepted=True, status=str(before.get(schema.ATTR_STATUS, "")), item={})


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}
