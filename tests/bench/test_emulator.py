"""The bench creates the job ledger table from the contract when a scenario asks for the ledger."""

from __future__ import annotations

from bench.emulator import PROJECT, Emulator
from common.ledger import schema as ledger
from common.names import FleetNames


def test_the_ledger_table_is_created_once_with_the_contracts_keys_index_and_ttl() -> None:
    """ensure_ledger_table makes <prefix>-jobs keyed on jobId with the by-day and failures indexes and TTL, once."""
    names = FleetNames.for_deployment(PROJECT, "ledger")
    with Emulator() as emulator:
        table = emulator.ensure_ledger_table(names)
        assert table == emulator.ensure_ledger_table(names)
        described = emulator.dynamodb.describe_table(TableName=table)["Table"]
        ttl = emulator.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]

    assert names.job_ledger_table == table
    assert [{"AttributeName": ledger.ATTR_JOB_ID, "KeyType": "HASH"}] == described["KeySchema"]
    assert {ledger.DAY_INDEX, ledger.FAILURES_INDEX} == {
        index["IndexName"] for index in described["GlobalSecondaryIndexes"]
    }
    assert "PAY_PER_REQUEST" == described["BillingModeSummary"]["BillingMode"]
    assert (ledger.ATTR_EXPIRES_AT, "ENABLED") == (ttl["AttributeName"], ttl["TimeToLiveStatus"])
