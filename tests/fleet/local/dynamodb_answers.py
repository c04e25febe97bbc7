"""Runs one fixed sequence of DynamoDB writes on in-process moto and prints every answer as JSON.

``python -m tests.fleet.local.dynamodb_answers plain|patched``: the test compares the two runs, so moto
with the emulator's speed-ups (fleet.local.dynamodb_speed) must answer exactly as moto without them. It
also counts how often moto's own update-expression parser ran.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.parsing import expressions

from bench.emulator import CREDENTIALS

TABLE = "jobs"
SET_STATUS = "SET #s = :s, #q = if_not_exists(#q, :q), #n = if_not_exists(#n, :zero) + :one"


def _update(job_id: str, expression: str, values: dict[str, Any], condition: str | None = None) -> dict[str, Any]:
    used = expression + (condition or "")
    names = {"#s": "status", "#q": "queuedDay", "#n": "attempts"}
    request: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"jobId": {"S": job_id}},
        "UpdateExpression": expression,
        # Only the placeholders used: moto, like DynamoDB, rejects unused ones before anything else.
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
        "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used},
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if condition:
        request["ConditionExpression"] = condition
    return request


def _values(status: str, day: str = "2026-12-04") -> dict[str, Any]:
    return {":s": {"S": status}, ":q": {"S": day}, ":zero": {"N": "0"}, ":one": {"N": "1"}}


def _requests() -> list[dict[str, Any]]:
    """New items, repeats of one expression, refused conditions, and expressions moto must reject each time."""
    refuse_if_succeeded = "attribute_not_exists(#s) OR #s <> :s"
    return [
        _update("a", SET_STATUS, _values("queued")),
        _update("a", SET_STATUS, _values("running", "2026-12-05")),
        _update("b", SET_STATUS, _values("queued")),
        _update("a", SET_STATUS, _values("succeeded"), refuse_if_succeeded),
        _update("a", SET_STATUS, _values("succeeded"), refuse_if_succeeded),  # refused: ALL_OLD comes back
        _update("b", "SET #s = :s, #s = :one", _values("x")),  # overlapping paths, twice
        _update("b", "SET #s = :s, #s = :one", _values("x")),
        {**_update("b", "SET #q = :q", _values("x")), "ExpressionAttributeNames": {"#q": "jobId"}},  # key attribute
        {**_update("b", "SET #q = :q", _values("x")), "ExpressionAttributeNames": {"#q": "jobId"}},
        _update("b", "SET #s = :s ADD #n :one", _values("running")),
        _update("b", "SET #s = :s REMOVE #s", _values("running")),  # one path twice, once more
        _update("c", "SET #s = :s, #q = #q + :one", _values("x")),  # a path that does not exist yet
    ]


def run() -> dict[str, Any]:
    parses = 0
    parser = getattr(expressions, "UpdateExpressionParser")  # noqa: B009 - not in moto's stubs
    original = parser.make

    def counted(expression: str) -> Any:
        nonlocal parses
        parses += 1
        return original(expression)

    parser.make = counted
    if sys.argv[1:] == ["patched"]:
        from fleet.local.emulator import patch_moto  # noqa: PLC0415 - only the patched run imports it

        patch_moto()
    os.environ.update(CREDENTIALS)  # dummy ones: moto accepts any, and real ones stay away
    answers: list[Any] = []
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        )
        for request in _requests():
            try:
                answers.append(dynamodb.update_item(**request)["Attributes"])
            except ClientError as error:
                answers.append({"error": error.response["Error"], "item": error.response.get("Item")})
        answers.append(dynamodb.scan(TableName=TABLE)["Items"])
    return {"answers": answers, "parses": parses}


if __name__ == "__main__":
    print(json.dumps(run(), sort_keys=True, default=str))  # noqa: T201 - the test reads it
