"""The job ledger client against moto's DynamoDB: claims, leases, outcomes, batching and faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from common.job_ids import job_id_for_message
from common.ledger import schema
from common.ledger.client import (
    Claim,
    ClaimAnswer,
    ClaimResult,
    InvalidResult,
    JobLedger,
    JobRef,
    LeaseCheck,
    LedgerOutcome,
    LedgerUnavailable,
    encode_result,
    iso_timestamp,
)
from common.ledger.days import utc_day
from common.ledger.schema import JobStatus
from fleet.local.provision import provision_job_ledger
from tests.conftest import RequestCounter
from tests.faults import FaultInjector

TABLE = "fleet-test-jobs"
LEASE_SECONDS = 60


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Pauses:
    """The ledger's retry pauses, taken on a clock of their own (so a bound is checked without waiting)."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.taken.append(seconds)

    def monotonic(self) -> float:
        return sum(self.taken)


def pausing_ledger(dynamodb: Any, clock: Clock, pauses: Pauses, retry_seconds: float = 3.0) -> JobLedger:
    return JobLedger(
        dynamodb=dynamodb,
        table_name=TABLE,
        lease_seconds=LEASE_SECONDS,
        clock=clock,
        retry_seconds=retry_seconds,
        sleep=pauses.sleep,
        monotonic=pauses.monotonic,
    )


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 3}, max_pool_connections=20)
        )
        provision_job_ledger(client, TABLE)
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_ledger(
    dynamodb: Any, clock: Clock, worker: str = "worker-a", sleep: Callable[[float], None] = time.sleep
) -> JobLedger:
    """``sleep`` takes the ledger's throttling pauses (a test records or skips them)."""
    return JobLedger(
        dynamodb=dynamodb, table_name=TABLE, lease_seconds=LEASE_SECONDS, worker_id=worker, clock=clock, sleep=sleep
    )


def job(index: int) -> JobRef:
    return JobRef(job_id=f"01JOB{index:021d}", job_type="main-job-processing", correlation_id=f"corr-{index}")


def claim(index: int, attempt: int = 1, message: str = "") -> Claim:
    return Claim(job=job(index), message_id=message or f"message-{index}", attempt=attempt)


def test_a_new_job_is_claimed_and_recorded_running(dynamodb, clock):
    """A first claim creates the item as running, with attempt, worker and lease."""
    ledger = make_ledger(dynamodb, clock)
    assert [ClaimResult.CLAIMED] == ledger.claim([claim(1)])
    item = ledger.get(job(1).job_id)
    assert item is not None
    assert JobStatus.RUNNING == item[schema.ATTR_STATUS]
    assert 1 == item[schema.ATTR_ATTEMPTS]
    assert "worker-a" == item[schema.ATTR_WORKER_ID]
    assert int((clock.now + LEASE_SECONDS) * 1000) == item[schema.ATTR_LEASE_UNTIL]
    assert iso_timestamp(clock.now) == item[schema.ATTR_STARTED_AT]


def test_only_one_of_two_racing_workers_claims_each_job(dynamodb, clock):
    """Two workers claiming the same twenty jobs at once: each job is claimed exactly once."""
    ledgers = [make_ledger(dynamodb, clock, "worker-a"), make_ledger(dynamodb, clock, "worker-b")]
    claims = [claim(index) for index in range(20)]
    results: dict[str, list[ClaimResult]] = {}
    barrier = threading.Barrier(2)

    def race(ledger: JobLedger) -> None:
        barrier.wait()
        collected: list[ClaimResult] = []
        for start in range(0, len(claims), 10):
            collected += ledger.claim(claims[start : start + 10])
        results[ledger.worker_id] = collected

    threads = [threading.Thread(target=race, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for index in range(20):
        outcomes = [results["worker-a"][index], results["worker-b"][index]]
        assert [ClaimResult.BUSY, ClaimResult.CLAIMED] == sorted(outcomes, key=lambda result: result.value)


def test_a_succeeded_job_is_not_claimed_again_and_the_skip_is_counted(dynamodb, clock):
    """A redelivery of a succeeded job answers ALREADY_SUCCEEDED and counts the duplicate."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, attempt=1, duration_ms=12)])
    other = make_ledger(dynamodb, clock, "worker-b")
    assert [ClaimResult.ALREADY_SUCCEEDED, ClaimResult.CLAIMED] == other.claim([claim(1, attempt=2), claim(2)])
    item = other.get(job(1).job_id)
    assert item is not None
    assert (JobStatus.SUCCEEDED, 1, 1) == (
        item[schema.ATTR_STATUS],
        item[schema.ATTR_DUPLICATES_SKIPPED],
        item[schema.ATTR_ATTEMPTS],
    )


def test_a_live_lease_makes_another_delivery_busy(dynamodb, clock):
    """While the lease is live another delivery of the job (another message, or a later receive) waits."""
    make_ledger(dynamodb, clock).claim([claim(1)])
    clock.now += LEASE_SECONDS - 1
    assert [ClaimResult.BUSY] == make_ledger(dynamodb, clock, "worker-b").claim([claim(1, message="dup")])


def test_an_expired_lease_is_taken_over(dynamodb, clock):
    """A worker that froze or died past its lease loses the job to the next delivery."""
    first = make_ledger(dynamodb, clock)
    first.claim([claim(1)])
    clock.now += LEASE_SECONDS + 1
    second = make_ledger(dynamodb, clock, "worker-b")
    assert [ClaimResult.CLAIMED] == second.claim([claim(1, attempt=2)])
    assert {job(1).job_id} == first.extend_leases([job(1).job_id]).lost
    item = second.get(job(1).job_id)
    assert item is not None
    assert ("worker-b", 2, 2) == (item[schema.ATTR_WORKER_ID], item[schema.ATTR_ATTEMPT], item[schema.ATTR_ATTEMPTS])


def test_extending_a_held_lease_keeps_other_workers_out(dynamodb, clock):
    """The heartbeat's extension keeps the job leased beyond the first lease."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    clock.now += LEASE_SECONDS - 5
    assert LeaseCheck() == ledger.extend_leases([job(1).job_id])
    clock.now += 10
    # Another message of the job (the same message received again would be a redelivery, which takes over).
    assert [ClaimResult.BUSY] == make_ledger(dynamodb, clock, "worker-b").claim([claim(1, attempt=2, message="dup")])


def test_a_second_message_of_one_job_in_a_batch_is_busy(dynamodb, clock):
    """A transaction may not name one item twice: the first claims, the duplicate waits."""
    results = make_ledger(dynamodb, clock).claim([claim(1), claim(2), claim(1, message="dup")])
    assert [ClaimResult.CLAIMED, ClaimResult.CLAIMED, ClaimResult.BUSY] == results


def test_the_same_delivery_asking_again_keeps_its_claim(dynamodb, clock):
    """A claim retried after a lost answer (same worker, message and attempt) is not refused."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    assert [ClaimResult.CLAIMED] == ledger.claim([claim(1)])


def test_failed_and_dead_never_overwrite_succeeded(dynamodb, clock):
    """A late failure report of an attempt that lost its lease cannot undo a success."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1), claim(2)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, attempt=1)])
    ledger.record(
        [
            LedgerOutcome(job(1).job_id, JobStatus.RETRYING, attempt=1, error="late"),
            LedgerOutcome(job(2).job_id, JobStatus.DEAD, attempt=1, error="quarantined: bad data"),
        ]
    )
    first, second = ledger.get(job(1).job_id), ledger.get(job(2).job_id)
    assert first is not None
    assert second is not None
    assert JobStatus.SUCCEEDED == first[schema.ATTR_STATUS]
    assert (JobStatus.DEAD, "quarantined: bad data") == (second[schema.ATTR_STATUS], second[schema.ATTR_DEAD_REASON])


def test_a_failed_job_can_be_claimed_again(dynamodb, clock):
    """A failed attempt frees the job for its retry, which increments the attempts."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.RETRYING, attempt=1, error="boom")])
    assert [ClaimResult.CLAIMED] == ledger.claim([claim(1, attempt=2)])
    item = ledger.get(job(1).job_id)
    assert item is not None
    assert (2, "boom") == (item[schema.ATTR_ATTEMPTS], item[schema.ATTR_LAST_ERROR])


def test_the_claim_that_creates_the_item_writes_queued_at_and_day_from_the_job_ids_ulid(dynamodb, clock):
    """main_job writes nothing: queuedAt/queuedDay come from the ULID's time, and no later write changes them."""
    ledger = make_ledger(dynamodb, clock)
    ref = _ulid_job(1, clock.now - 9 * 3_600)  # minted at 23:00 the day before the claim (2027-01-15T08:00Z)
    ledger.claim([Claim(ref, "message-1", 1)])
    ledger.record([LedgerOutcome(ref.job_id, JobStatus.RETRYING, 1, error="boom")])
    clock.now += 86_400
    ledger.claim([Claim(ref, "message-1", 2)])
    item = ledger.get(ref.job_id) or {}
    assert ("2027-01-14T23:00:00.000Z", "2027-01-14") == (item[schema.ATTR_QUEUED_AT], item[schema.ATTR_QUEUED_DAY])


def test_results_round_trip_as_json(dynamodb, clock):
    """A job's JSON result is stored in the item and read back unchanged."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    result = {"invoice": "INV-1", "lines": [1, 2, 3], "total": 12.5}
    ledger.record(
        [LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, 1, duration_ms=40, result_json=encode_result(result))]
    )
    item = ledger.get(job(1).job_id)
    assert item is not None
    assert '{"invoice":"INV-1","lines":[1,2,3],"total":12.5}' == item[schema.ATTR_RESULT]
    assert 40 == item[schema.ATTR_DURATION_MS]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * (schema.MAX_RESULT_BYTES + 1), "the ledger stores at most"),
        ({"when": object()}, "not JSON-serialisable"),
        (float("nan"), "not JSON-serialisable"),
    ],
)
def test_unstorable_results_are_refused_with_a_clear_error(value, message):
    """Oversized or non-JSON results raise InvalidResult naming the problem."""
    with pytest.raises(InvalidResult, match=message):
        encode_result(value)


def test_a_clean_batch_of_ten_costs_one_update_item_per_job_and_state_change(dynamodb, clock):
    """claim, lease and outcome for ten jobs are ten single-item UpdateItems each (1 write unit, not 2; main_job
    writes no queued item)."""
    counter = RequestCounter()
    counter.attach(dynamodb)
    ledger = make_ledger(dynamodb, clock)
    jobs = [job(index) for index in range(10)]
    ledger.claim([claim(index) for index in range(10)])
    ledger.extend_leases([ref.job_id for ref in jobs])
    ledger.record([LedgerOutcome(ref.job_id, JobStatus.SUCCEEDED, 1) for ref in jobs])
    assert {"UpdateItem": 30} == dict(counter.calls)


def test_a_refused_claim_is_answered_from_its_old_image_without_a_read(dynamodb, clock):
    """ALL_OLD in the ConditionalCheckFailedException answers why: no GetItem, nothing written twice."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, 1)])
    counter = RequestCounter()
    counter.attach(dynamodb)
    results = ledger.claim([claim(index, attempt=2) for index in range(1, 11)])
    assert [ClaimResult.ALREADY_SUCCEEDED] + [ClaimResult.CLAIMED] * 9 == results
    assert {"UpdateItem": 11} == dict(counter.calls)  # ten claims, and the duplicate counted


@pytest.mark.parametrize("kind", ["throttle", "unavailable"])
def test_transient_faults_are_absorbed_by_botocores_retries(dynamodb, clock, kind):
    """A throttle or a 503 that clears within botocore's retries costs nothing but the retry."""
    faults = FaultInjector(dynamodb)
    faults.fail("UpdateItem", kind, times=2)
    ledger = make_ledger(dynamodb, clock)
    assert [ClaimResult.CLAIMED] == ledger.claim([claim(1)])
    assert 2 == faults.injected["UpdateItem"]


@pytest.mark.parametrize("kind", ["throttle", "unavailable", "down"])
def test_a_lasting_outage_raises_ledger_unavailable_and_leaves_nothing_half_written(dynamodb, clock, kind):
    """After botocore gives up the caller gets LedgerUnavailable, and the next claim works normally."""
    faults = FaultInjector(dynamodb)
    faults.fail("UpdateItem", kind)
    ledger = make_ledger(dynamodb, clock)
    with pytest.raises(LedgerUnavailable, match="UpdateItem"):
        ledger.claim([claim(1), claim(2)])
    faults.clear()
    assert [ClaimResult.CLAIMED, ClaimResult.CLAIMED] == ledger.claim([claim(1), claim(2)])


def test_a_claim_applied_but_answered_with_a_reset_is_still_held(dynamodb, clock):
    """The connection drops after DynamoDB applied the claim: botocore retries, and the claim stands."""
    faults = FaultInjector(dynamodb)
    faults.fail("UpdateItem", "reset_after", times=1)
    ledger = make_ledger(dynamodb, clock)
    assert [ClaimResult.CLAIMED] == ledger.claim([claim(1)])
    assert [ClaimResult.BUSY] == make_ledger(dynamodb, clock, "worker-b").claim([claim(1, message="dup")])


def test_a_missing_table_is_unavailable_not_a_crash(clock):
    """A wrong JOB_LEDGER_TABLE surfaces as LedgerUnavailable, which the caller's policy handles."""
    with mock_aws():
        ledger = JobLedger(dynamodb=boto3.client("dynamodb"), table_name="no-such-table", lease_seconds=60, clock=clock)
        with pytest.raises(LedgerUnavailable):
            ledger.claim([claim(1)])
        with pytest.raises(LedgerUnavailable):
            ledger.get("anything")


def _ulid_job(index: int, at: float) -> JobRef:
    """A job whose ID is a real ULID of ``at`` (the by-day key comes from the ID's time)."""
    return JobRef(job_id=job_id_for_message(f"m-{index}", int(at * 1000)), job_type="t", correlation_id=f"c-{index}")


def _index_ids(dynamodb: Any, index: str, attribute: str, day: str) -> list[str]:
    response = dynamodb.query(
        TableName=TABLE,
        IndexName=index,
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": attribute},
        ExpressionAttributeValues={":d": {"S": day}},
    )
    return [item[schema.ATTR_JOB_ID]["S"] for item in response["Items"]]


def test_every_write_that_creates_an_item_sets_queued_day_from_the_job_id_once(dynamodb, clock):
    """queuedDay is the ULID's UTC day, set by a first claim or a first outcome, never changed after."""
    ledger = make_ledger(dynamodb, clock)
    day = utc_day(clock.now)
    queued, claimed, recorded = (_ulid_job(index, clock.now - 60) for index in range(3))
    clock.now += 86_400  # every write happens the next day: the key still follows the job ID
    ledger.claim([Claim(claimed, "message-c", 1)])
    ledger.record([LedgerOutcome(recorded.job_id, JobStatus.QUEUED, 1)])
    clock.now += 86_400
    ledger.claim([Claim(queued, "message-q", 1)])
    ledger.record([LedgerOutcome(queued.job_id, JobStatus.SUCCEEDED, 1, duration_ms=5)])

    assert {day} == {ledger.get(job.job_id)[schema.ATTR_QUEUED_DAY] for job in (queued, claimed, recorded)}
    assert sorted(job.job_id for job in (queued, claimed, recorded)) == sorted(
        _index_ids(dynamodb, schema.DAY_INDEX, schema.ATTR_QUEUED_DAY, day)
    )


def test_only_the_write_that_makes_a_job_dead_sets_failed_day(dynamodb, clock):
    """The failures index is sparse: a dead job is in it under the day it died; success and retry never."""
    ledger = make_ledger(dynamodb, clock)
    dead, fine, retried = (_ulid_job(index, clock.now) for index in range(3))
    ledger.claim([Claim(job, f"message-{index}", 1) for index, job in enumerate((dead, fine, retried))])
    clock.now += 86_400
    ledger.record(
        [
            LedgerOutcome(dead.job_id, JobStatus.DEAD, 1, error="boom"),
            LedgerOutcome(fine.job_id, JobStatus.SUCCEEDED, 1, duration_ms=5),
            LedgerOutcome(retried.job_id, JobStatus.RETRYING, 1, error="boom"),
        ]
    )

    assert utc_day(clock.now) == ledger.get(dead.job_id)[schema.ATTR_FAILED_DAY]
    assert [None, None] == [ledger.get(job.job_id).get(schema.ATTR_FAILED_DAY) for job in (fine, retried)]
    assert [dead.job_id] == _index_ids(dynamodb, schema.FAILURES_INDEX, schema.ATTR_FAILED_DAY, utc_day(clock.now))


# -- issue 28/32: single-item writes, claim details, leases tied to visibility, retries ----------------


def test_a_claim_answers_the_jobs_attempts_and_a_busy_copy_the_holders_lease_end(dynamodb, clock):
    """claim_details: CLAIMED with attempts (UPDATED_NEW), BUSY with leaseUntilMs from the old image."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.RETRYING, attempt=1, error="boom")])
    [answer] = ledger.claim_details([claim(1, attempt=2)])
    [busy] = make_ledger(dynamodb, clock, "worker-b").claim_details([claim(1, attempt=3, message="dup")])

    assert ClaimAnswer(ClaimResult.CLAIMED, attempts=2) == answer
    assert ClaimAnswer(ClaimResult.BUSY, holder_lease_until_ms=int((clock.now + LEASE_SECONDS) * 1000)) == busy


def test_a_claims_lease_ends_where_its_delivery_visibility_ends(dynamodb, clock):
    """Claim.lease_until_ms and extend_leases(lease_until_ms=) set the lease, not now + lease_seconds."""
    ledger = make_ledger(dynamodb, clock)
    visibility_end_ms = int(clock.now * 1000) + 12_345
    ledger.claim([Claim(job=job(1), message_id="message-1", attempt=1, lease_until_ms=visibility_end_ms)])
    claimed = (ledger.get(job(1).job_id) or {})[schema.ATTR_LEASE_UNTIL]
    ledger.extend_leases([job(1).job_id], lease_until_ms=visibility_end_ms + 30_000)

    assert visibility_end_ms == claimed
    assert visibility_end_ms + 30_000 == (ledger.get(job(1).job_id) or {})[schema.ATTR_LEASE_UNTIL]


def test_a_redelivery_of_the_same_message_takes_over_its_own_live_claim(dynamodb, clock):
    """SQS delivered the message again, so its earlier delivery is over: any worker's redelivery claims it."""
    make_ledger(dynamodb, clock).claim([claim(1)])
    clock.now += 1  # the first claim's lease is still live
    answers = make_ledger(dynamodb, clock, "worker-b").claim_details([claim(1, attempt=2)])

    assert [ClaimAnswer(ClaimResult.CLAIMED, attempts=2)] == answers
    assert "worker-b" == (make_ledger(dynamodb, clock).get(job(1).job_id) or {})[schema.ATTR_WORKER_ID]


def test_every_skipped_copy_is_counted_once(dynamodb, clock):
    """Two copies of a succeeded job in one batch, then one more: duplicatesSkipped is 3, not 2."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, attempt=1)])
    assert [ClaimResult.ALREADY_SUCCEEDED] * 2 == ledger.claim([claim(1, 2, "copy-a"), claim(1, 2, "copy-b")])
    ledger.claim([claim(1, 3, "copy-c")])

    assert 3 == (ledger.get(job(1).job_id) or {})[schema.ATTR_DUPLICATES_SKIPPED]


def test_a_failing_duplicate_counter_never_fails_the_claims_of_its_batch(dynamodb, clock):
    """The counter's own UpdateItem down for good: the batch's new jobs are still claimed, the skip still answered."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    ledger.record([LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, attempt=1)])
    faults = FaultInjector(dynamodb)
    faults.fail("UpdateItem", "unavailable", matching=schema.ATTR_DUPLICATES_SKIPPED)

    results = ledger.claim([claim(1, attempt=2), claim(2), claim(3)])

    assert [ClaimResult.ALREADY_SUCCEEDED, ClaimResult.CLAIMED, ClaimResult.CLAIMED] == results
    assert 0 < faults.injected["UpdateItem"]
    assert JobStatus.RUNNING == (ledger.get(job(2).job_id) or {})[schema.ATTR_STATUS]


@pytest.mark.parametrize("kind", ["throttle", "throughput", "request_limit", "conflict"])
def test_throttling_beyond_botocores_retries_is_retried_with_backoff(dynamodb, clock, kind):
    """Five refusals (botocore allows three attempts): the write still lands, after growing, jittered pauses."""
    faults = FaultInjector(dynamodb)
    faults.fail("UpdateItem", kind, times=5)
    pauses: list[float] = []
    ledger = make_ledger(dynamodb, clock, "a", sleep=pauses.append)

    assert [ClaimResult.CLAIMED] == ledger.claim([claim(1)])
    assert 5 == faults.injected["UpdateItem"]
    assert pauses
    assert pauses == sorted(pauses)


def test_lasting_throttling_gives_up_within_its_bound_as_ledger_unavailable(dynamodb, clock):
    """Throttled for good: LedgerUnavailable once the pauses would pass retry_seconds, never an endless loop."""
    # One attempt per call, so botocore's own (real) backoff does not slow the test: the pauses are ours.
    single = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    FaultInjector(single).fail("UpdateItem", "throughput")
    pauses = Pauses()

    with pytest.raises(LedgerUnavailable, match="ProvisionedThroughputExceededException"):
        pausing_ledger(single, clock, pauses, retry_seconds=2.0).claim([claim(1)])
    assert 2 < len(pauses.taken)
    assert sum(pauses.taken) <= 2.0
    # Exponential with equal jitter: each pause at least the previous one's upper half (up to the 1 s cap).
    assert pauses.taken == sorted(pauses.taken[:4]) + pauses.taken[4:]


def test_a_succeeded_written_through_throttling_keeps_a_later_copy_from_running(dynamodb, clock):
    """A throttled and conflicting `succeeded` is retried, not dropped: the next copy is skipped."""
    ledger = make_ledger(dynamodb, clock)
    ledger.claim([claim(1)])
    faults = FaultInjector(dynamodb)
    faults.fail("UpdateItem", "conflict", times=4)
    quiet = make_ledger(dynamodb, clock, sleep=lambda _: None)
    quiet.record([LedgerOutcome(job(1).job_id, JobStatus.SUCCEEDED, attempt=1)])
    clock.now += LEASE_SECONDS + 1

    assert [ClaimResult.ALREADY_SUCCEEDED] == make_ledger(dynamodb, clock, "worker-b").claim([claim(1, 2, "dup")])
