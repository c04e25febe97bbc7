"""The job ledger's table in moto, created exactly per common/ledger_schema.py, for tests that need it."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from common import ledger_schema as schema


def create_ledger_table(dynamodb: Any, table: str) -> None:
    """The table exactly as the contract (and Terraform) defines it."""
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": schema.ATTR_JOB_ID, "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": schema.ATTR_JOB_ID, "AttributeType": "S"},
            {"AttributeName": schema.ATTR_STATUS, "AttributeType": "S"},
            {"AttributeName": schema.ATTR_UPDATED_AT, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": schema.STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": schema.ATTR_STATUS, "KeyType": "HASH"},
                    {"AttributeName": schema.ATTR_UPDATED_AT, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": schema.ATTR_EXPIRES_AT}
    )


@pytest.fixture
def atomic_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies a transaction atomically; moto checks and writes without a lock, so serialise it.

    Without this, two threads can both pass a condition in moto, which DynamoDB never allows: the race
    test would then measure moto, not our claim condition.
    """
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - only this fixture patches moto

    original = DynamoDBBackend.transact_write_items
    lock = threading.Lock()

    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", serialised)
