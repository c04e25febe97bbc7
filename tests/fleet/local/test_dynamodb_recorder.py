"""The emulator's DynamoDB write recorder: each item write with its item before and after, in the table's order."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bench.emulator import CREDENTIALS
from fleet.local.dynamodb_recorder import RECORDS_PATH
from fleet.local.emulator import start_emulator, stop_emulator

TABLE = "jobs"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A recording emulator with one table keyed on jobId."""
    port = _free_port()
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    process = start_emulator(port, log_path=Path(log), record_dynamodb=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _dynamodb(endpoint).create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        )
        yield endpoint
    finally:
        stop_emulator(process)


def _dynamodb(endpoint: str) -> Any:
    """A client with the bench's dummy credentials: the emulator accepts any, and real ones stay away."""
    session = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    return session.client("dynamodb", endpoint_url=endpoint)


def _records(endpoint: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(endpoint + RECORDS_PATH, timeout=10) as response:  # noqa: S310 - our emulator
        records: list[dict[str, Any]] = json.loads(response.read())
    return records


def _update(job_id: str, status: str, condition: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"jobId": {"S": job_id}},
        "UpdateExpression": "SET #s = :s, queuedDay = if_not_exists(queuedDay, :d)",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": status}, ":d": {"S": "2026-12-04"}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return update


def test_an_update_is_recorded_with_the_item_before_and_after(endpoint: str) -> None:
    """A new item's UpdateItem has no before image; the next one sees the first's after, if_not_exists applied."""
    dynamodb = _dynamodb(endpoint)
    _records(endpoint)
    dynamodb.update_item(**_update("a", "queued"))
    dynamodb.update_item(**_update("a", "running"))

    first, second = _records(endpoint)

    assert (None, "UpdateItem", False, True) == (
        first["before"],
        first["operation"],
        first["transactional"],
        first["applied"],
    )
    assert {"jobId": {"S": "a"}, "status": {"S": "queued"}, "queuedDay": {"S": "2026-12-04"}} == first["after"]
    assert first["after"] == second["before"]
    assert {"S": "running"} == second["after"]["status"]


def test_a_refused_condition_is_recorded_as_not_applied(endpoint: str) -> None:
    """A ConditionalCheckFailed leaves the item as it was, and the record says so."""
    dynamodb = _dynamodb(endpoint)
    dynamodb.update_item(**_update("b", "succeeded"))
    _records(endpoint)
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.update_item(**_update("b", "running", condition="#s = :s"))

    (refused,) = _records(endpoint)

    assert (False, refused["before"]) == (refused["applied"], refused["after"])
    assert {"S": "succeeded"} == refused["before"]["status"]


def test_a_transaction_records_each_item_as_transactional_and_a_cancelled_one_as_not_applied(endpoint: str) -> None:
    """Every action of a TransactWriteItems is one transactional record; a cancelled one changes nothing."""
    dynamodb = _dynamodb(endpoint)
    _records(endpoint)
    dynamodb.transact_write_items(
        TransactItems=[{"Update": _update("c", "queued")}, {"Update": _update("d", "queued")}]
    )
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[{"Update": _update("c", "running")}, {"Update": _update("d", "running", "#s = :d")}]
        )

    records = _records(endpoint)

    assert [(True, True), (True, True), (True, False), (True, False)] == [
        (r["transactional"], r["applied"]) for r in records
    ]
    assert [{"S": "queued"}] * 4 == [r["after"]["status"] for r in records]


def test_a_transaction_rejected_before_it_starts_records_nothing(endpoint: str) -> None:
    """Two actions on one item are a ValidationException: nothing was written or billed, so nothing is recorded."""
    dynamodb = _dynamodb(endpoint)
    _records(endpoint)
    with pytest.raises(dynamodb.exceptions.ClientError, match="ValidationException"):
        dynamodb.transact_write_items(TransactItems=[{"Update": _update("e", "queued")}, {"Update": _update("e", "x")}])

    assert [] == _records(endpoint)
