"""An operator's cancel request against moto's DynamoDB: one write, refused on final states, seen by workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.job_ids import job_id_for_message
from common.ledger import schema
from common.ledger.cancel import request_cancel
from common.ledger.client import Claim, ClaimResult, JobLedger, JobRef, LeaseCheck, LedgerOutcome
from common.ledger.progress import Progress
from common.ledger.schema import JobStatus
from fleet.local.provision import provision_job_ledger
from tests.conftest import RequestCounter

TABLE = "fleet-test-jobs"
JOB = JobRef(job_id="01JOB000000000000000000031", job_type="diagnostic-sleep", correlation_id="corr-31")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        provision_job_ledger(client, TABLE)
        yield client


def _ledger(dynamodb: Any, worker: str = "worker-a") -> JobLedger:
    return JobLedger(dynamodb=dynamodb, table_name=TABLE, lease_seconds=60, worker_id=worker, clock=Clock())


def _cancel(dynamodb: Any, reason: str = "sent by mistake") -> Any:
    return request_cancel(dynamodb, TABLE, JOB.job_id, by="ops@laptop", reason=reason, now=1_800_000_100.0)


def test_cancelling_a_job_no_worker_has_claimed_costs_one_write_and_its_claim_leaves_it_cancelled(dynamodb):
    """No item yet (main_job writes none): one UpdateItem creates it cancelled; the first claim keeps that."""
    counter = RequestCounter()
    counter.attach(dynamodb)
    answer = _cancel(dynamodb)
    assert {"UpdateItem": 1} == dict(counter.calls)
    assert (True, "") == (answer.accepted, answer.status)

    ledger = _ledger(dynamodb)
    assert [ClaimResult.CANCELLED] == ledger.claim([Claim(JOB, "message-1", 1)])
    item = ledger.get(JOB.job_id) or {}
    assert JobStatus.CANCELLED == item[schema.ATTR_STATUS]
    assert ("ops@laptop", "sent by mistake") == (item[schema.ATTR_CANCELLED_BY], item[schema.ATTR_CANCEL_REASON])
    assert "2027-01-15T08:01:40.000Z" == item[schema.ATTR_CANCEL_REQUESTED_AT]


def test_a_cancelled_job_is_refused_at_every_claim(dynamodb):
    """Its claim answers CANCELLED, on the first delivery and on every later one, and it never turns running."""
    ledger = _ledger(dynamodb)
    _cancel(dynamodb)
    assert [ClaimResult.CANCELLED] == ledger.claim([Claim(JOB, "message-1", 1)])
    assert [ClaimResult.CANCELLED] == _ledger(dynamodb, "worker-b").claim([Claim(JOB, "message-2", 2)])
    assert JobStatus.CANCELLED == (ledger.get(JOB.job_id) or {})[schema.ATTR_STATUS]


def test_cancelling_a_succeeded_job_is_refused_with_its_state_and_changes_nothing(dynamodb):
    """A final state refuses the request; the answer names it from the old image, and the item is untouched."""
    ledger = _ledger(dynamodb)
    ledger.claim([Claim(JOB, "message-1", 1)])
    ledger.record([LedgerOutcome(JOB.job_id, JobStatus.SUCCEEDED, 1, duration_ms=5)])
    before = ledger.get(JOB.job_id)

    answer = _cancel(dynamodb)

    assert (False, JobStatus.SUCCEEDED) == (answer.accepted, answer.status)
    assert before == ledger.get(JOB.job_id)


def test_cancelling_twice_is_refused_as_already_cancelled_and_keeps_the_first_request(dynamodb):
    """The second request does not overwrite who asked first, or when."""
    _cancel(dynamodb, reason="first")
    answer = _cancel(dynamodb, reason="second")
    assert (False, JobStatus.CANCELLED) == (answer.accepted, answer.status)
    assert "first" == answer.item[schema.ATTR_CANCEL_REASON]


def test_a_running_job_learns_of_the_cancel_from_its_lease_extension(dynamodb):
    """The extension is refused, and the old image tells a cancel from a lost lease."""
    ledger = _ledger(dynamodb)
    ledger.claim([Claim(JOB, "message-1", 1)])
    _cancel(dynamodb)
    assert LeaseCheck(cancelled=frozenset({JOB.job_id})) == ledger.extend_leases([JOB.job_id])


def test_a_job_that_ignores_the_cancel_keeps_both_facts(dynamodb):
    """Its success is written over `cancelled`, and cancelRequestedAt stays: both facts are in the item."""
    ledger = _ledger(dynamodb)
    ledger.claim([Claim(JOB, "message-1", 1)])
    _cancel(dynamodb)
    ledger.record([LedgerOutcome(JOB.job_id, JobStatus.SUCCEEDED, 1, duration_ms=9)])
    item = ledger.get(JOB.job_id) or {}
    assert (JobStatus.SUCCEEDED, "ops@laptop") == (item[schema.ATTR_STATUS], item[schema.ATTR_CANCELLED_BY])


def test_a_retry_of_a_cancelled_job_is_refused_and_it_stays_cancelled(dynamodb):
    """A failure would look retryable: the write is refused, reported as cancelled, and the item is unchanged."""
    ledger = _ledger(dynamodb)
    ledger.claim([Claim(JOB, "message-1", 1)])
    _cancel(dynamodb)
    assert {JOB.job_id} == ledger.record([LedgerOutcome(JOB.job_id, JobStatus.RETRYING, 1, error="boom")])
    assert JobStatus.CANCELLED == (ledger.get(JOB.job_id) or {})[schema.ATTR_STATUS]


def test_progress_rides_on_the_lease_extension(dynamodb):
    """The latest report is written by the extension the heartbeat makes anyway: no request of its own."""
    ledger = _ledger(dynamodb)
    ledger.claim([Claim(JOB, "message-1", 1)])
    counter = RequestCounter()
    counter.attach(dynamodb)
    ledger.extend_leases([JOB.job_id], {JOB.job_id: Progress(0.25, "3 of 12 files", 1_800_000_050.0)})
    assert {"UpdateItem": 1} == dict(counter.calls)
    item = ledger.get(JOB.job_id) or {}
    assert (0.25, "3 of 12 files", "2027-01-15T08:00:50.000Z") == (
        float(item[schema.ATTR_PROGRESS]),
        item[schema.ATTR_PROGRESS_NOTE],
        item[schema.ATTR_PROGRESS_AT],
    )


def test_a_cancel_that_creates_the_item_puts_it_in_by_day_under_its_job_ids_day(dynamodb):
    """The item a cancel creates gets queuedDay from the job ID (if_not_exists), so `fleet jobs` lists it."""
    job_id = job_id_for_message("message-early", 1_700_000_000_000)  # 2023-11-14, whatever the cancel's time
    request_cancel(dynamodb, TABLE, job_id, by="ops@laptop", reason="early", now=1_800_000_100.0)
    listed = dynamodb.query(
        TableName=TABLE,
        IndexName=schema.DAY_INDEX,
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": schema.ATTR_QUEUED_DAY},
        ExpressionAttributeValues={":d": {"S": "2023-11-14"}},
    )["Items"]
    assert [job_id] == [item[schema.ATTR_JOB_ID]["S"] for item in listed]


def test_a_cancel_keeps_the_queued_day_the_claim_wrote(dynamodb):
    """An existing item's queuedDay is never rewritten, so the cancel writes nothing more to the index."""
    ledger = _ledger(dynamodb)
    queued = JobRef(job_id_for_message("message-q", 1_700_000_000_000), "diagnostic-sleep", "corr")
    ledger.claim([Claim(queued, "message-q", 1)])
    dynamodb.update_item(
        TableName=TABLE,
        Key={schema.ATTR_JOB_ID: {"S": queued.job_id}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": schema.ATTR_QUEUED_DAY},
        ExpressionAttributeValues={":d": {"S": "written-by-the-claim"}},
    )
    request_cancel(dynamodb, TABLE, queued.job_id, by="ops@laptop", reason="", now=1_800_000_100.0)
    assert "written-by-the-claim" == (ledger.get(queued.job_id) or {})[schema.ATTR_QUEUED_DAY]
