"""``python -m bench.ledger_client`` drives both callers through real writes (counted, never timed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ulid import ULID

from bench.client_probe import probe_emulator
from bench.ledger_client import LEDGER, MINIMAL, TABLE, job_cpu_ms, ledger_writes, measure, minimal_writes
from common.ledger.client import JobLedger
from fleet.local.provision import provision_job_ledger


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with probe_emulator() as (endpoint, session):
        client = session.client("dynamodb", endpoint_url=endpoint)
        try:
            provision_job_ledger(client, TABLE)
            yield client
        finally:
            client.close()


def _statuses(dynamodb: Any) -> list[str]:
    return sorted(item["status"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"])


def test_the_ledger_client_probe_reports_cpu_for_both_callers() -> None:
    figures = measure(jobs=3, rounds=1)
    assert sorted(figures) == [LEDGER, MINIMAL]
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
