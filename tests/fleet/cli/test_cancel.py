"""Tests for `fleet cancel` (fleet/cli/cancel.py) against moto's DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest

from common.ledger.schema import ATTR_FINISHED_AT, JobStatus
from fleet.local.provision import provision_job_ledger

from .conftest import REGION, new_job_id


@pytest.fixture
def dynamodb(fleet):
    client = boto3.client("dynamodb", region_name=REGION)
    provision_job_ledger(client, fleet.names.job_ledger_table)
    return client


def _item(dynamodb, fleet, job_id: str) -> dict:
    return dynamodb.get_item(TableName=fleet.names.job_ledger_table, Key={"jobId": {"S": job_id}}).get("Item", {})


def test_cancel_marks_an_unknown_job_cancelled_with_who_and_why(fleet, dynamodb):
    """A job ID not in the ledger yet is cancelled at once, with the reason, and the answer says what follows."""
    job_id = new_job_id(1, datetime.now(UTC))
    result = fleet.run("cancel", job_id, "--reason", "sent by mistake")

    item = _item(dynamodb, fleet, job_id)
    assert 0 == result.code
    assert f"cancelled  {job_id}  (was unknown)" in result.out
    assert "stays cancelled and never runs" in result.out
    assert JobStatus.CANCELLED == item["status"]["S"]
    assert "sent by mistake" == item["cancelReason"]["S"]
    assert "@" in item["cancelledBy"]["S"]


def test_cancelling_a_succeeded_job_exits_non_zero_and_changes_nothing(fleet, dynamodb):
    """A final state refuses the cancel: one line on stderr naming it, exit 1, the item unchanged."""
    job_id = new_job_id(2, datetime.now(UTC))
    item = {
        "jobId": {"S": job_id},
        "status": {"S": JobStatus.SUCCEEDED.value},
        "updatedAt": {"S": "2026-12-04T10:00:00.000Z"},
        ATTR_FINISHED_AT: {"S": "2026-12-04T10:00:00.000Z"},
    }
    dynamodb.put_item(TableName=fleet.names.job_ledger_table, Item=item)

    result = fleet.run("cancel", job_id)

    assert 1 == result.code
    assert f"not cancelled  {job_id}  is already succeeded (at 2026-12-04T10:00:00.000Z)" in result.err
    assert item == _item(dynamodb, fleet, job_id)


def test_cancelling_twice_succeeds_and_keeps_the_first_request(fleet, dynamodb):
    """Asking again is not an error: it says when and by whom the job was cancelled, and changes nothing."""
    job_id = new_job_id(3, datetime.now(UTC))
    fleet.run("cancel", job_id, "--reason", "first")
    result = fleet.run("cancel", job_id, "--reason", "second")

    assert 0 == result.code
    assert f"already cancelled  {job_id}" in result.out
    assert "first" == _item(dynamodb, fleet, job_id)["cancelReason"]["S"]


def test_cancel_rejects_a_malformed_job_id_before_any_request(fleet, dynamodb):
    """A job ID ends up in a key and a stream name: a bad one is a clear error, not a write."""
    result = fleet.run("cancel", "not-a-job")
    assert (1, "fleet: jobId must be a 26-character upper-case ULID\n") == (result.code, result.err)
    assert 0 == dynamodb.scan(TableName=fleet.names.job_ledger_table)["Count"]


def test_job_and_jobs_show_the_cancellation(fleet, dynamodb):
    """`fleet job` shows who cancelled and why; `fleet jobs --status cancelled` lists the job."""
    job_id = new_job_id(4, datetime.now(UTC))
    fleet.run("cancel", job_id, "--reason", "wrong input")

    shown = fleet.run("job", job_id)
    listed = fleet.run("jobs", "--status", "cancelled")

    assert 0 == shown.code
    assert "status       cancelled" in shown.out
    assert "wrong input" in shown.out
    assert job_id in listed.out
