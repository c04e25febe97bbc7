"""``python -m bench.ledger_client`` drives both callers through real writes (counted, never timed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ulid import ULID

from bench.emulator import CREDENTIALS, HOST, REGION, free_port
from bench.ledger_client import TABLE, job_cpu_ms, ledger_writes, measure, minimal_writes
from common.ledger.client import JobLedger
from fleet.local.emulator import start_emulator, stop_emulator
from fleet.local.provision import provision_job_ledger


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    port = free_port()
    process = start_emulator(port, host=HOST)
    client = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).client("dynamodb", endpoint_url=f"http://{HOST}:{port}")
    try:
        provision_job_ledger(client, TABLE)
        yield client
    finally:
        client.close()
        stop_emulator(process)


def _statuses(dynamodb: Any) -> list[str]:
    return sorted(item["status"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"])


def test_the_ledger_client_probe_reports_cpu_for_both_callers() -> None:
    figures = measure(jobs=3, rounds=1)
    assert sorted(figures) == ["ledger (claim + outcome)", "minimal UpdateItem x2"]
    assert all(cpu > 0 for cpu in figures.values())


def test_the_ledger_caller_claims_and_records_each_job_it_is_timed_on(dynamodb: Any) -> None:
    # A probe that timed refused claims would report the ledger cheaper than it is.
    job_cpu_ms(ledger_writes(JobLedger(dynamodb=dynamodb, table_name=TABLE, lease_seconds=60)), jobs=2)
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert ["succeeded", "succeeded"] == _statuses(dynamodb)
    assert [("1", "probe")] * 2 == [(item["attempts"]["N"], item["jobType"]["S"]) for item in items]


def test_the_ledger_caller_raises_when_a_claim_is_refused(dynamodb: Any) -> None:
    writes = ledger_writes(JobLedger(dynamodb=dynamodb, table_name=TABLE, lease_seconds=60))
    job_id = str(ULID())
    writes(job_id)
    with pytest.raises(RuntimeError, match="claim of"):
        writes(job_id)  # it succeeded: the second claim is refused


def test_the_minimal_caller_writes_each_job_twice(dynamodb: Any) -> None:
    job_cpu_ms(minimal_writes(dynamodb), jobs=3)
    assert ["succeeded"] * 3 == _statuses(dynamodb)
