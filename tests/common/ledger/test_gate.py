"""The real background_job worker with the job ledger on: each job's effect happens once, nothing is lost."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from background_job import service
from background_job.api import JobCancelled, JobContext
from background_job.jobs import REGISTRY
from common.job_ids import job_id_for_message
from common.job_log.log import job_stream_name
from common.ledger.cancel import request_cancel
from common.ledger.client import Claim, ClaimResult, JobLedger, JobRef, LedgerOutcome
from common.ledger.gate import LedgerGate
from common.ledger.schema import JobStatus
from common.messages import BackgroundJob
from common.metrics import MetricsEmitter
from common.names import BACKGROUND_JOB_SERVICE
from common.sqs.in_flight import InFlight, Lease
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome
from common.sqs.shutdown import Shutdown
from tests.conftest import AwsFleet
from tests.faults import FaultInjector
from tests.waiting import wait_until

COUNTING = "counting"


class SideEffects:
    """What the counting job did, by job ID: the effect the ledger must make happen once."""

    def __init__(self) -> None:
        self.runs: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def __call__(self, context: JobContext) -> object:
        with self._lock:
            self.runs[context.job_id] += 1
        return {"jobId": context.job_id, "answer": 42}


class LongJob:
    """Runs until cancelled (or ``seconds``), reporting progress; ``cooperative`` jobs stop on the cancel."""

    def __init__(self, *, cooperative: bool, seconds: float = 20.0) -> None:
        self.cooperative = cooperative
        self.seconds = seconds
        self.started = threading.Event()
        self.saw_cancel = threading.Event()
        self.finished: list[str] = []

    def __call__(self, context: JobContext) -> object:
        self.started.set()
        steps = int(self.seconds / 0.1)
        for step in range(steps):
            context.progress(step / steps, f"step {step}")
            if context.cancelled.wait(0.1):
                self.saw_cancel.set()
                if self.cooperative:
                    self.finished.append("stopped")
                    raise JobCancelled(f"stopping at step {step}")
        self.finished.append("completed")
        return None


@pytest.fixture
def effects(monkeypatch: pytest.MonkeyPatch) -> SideEffects:
    counter = SideEffects()
    monkeypatch.setattr(service, "REGISTRY", {**REGISTRY, COUNTING: counter})
    return counter


def _register(monkeypatch: pytest.MonkeyPatch, job_type: str, handler: Any) -> None:
    monkeypatch.setattr(service, "REGISTRY", {**service.REGISTRY, job_type: handler})


def _cancel(fleet: AwsFleet, job_id: str) -> None:
    answer = request_cancel(fleet.dynamodb, fleet.names.job_ledger_table, job_id, by="test", reason="mistake")
    assert answer.accepted


def _stream_events(fleet: AwsFleet, job_id: str) -> list[str]:
    try:
        events = fleet.logs.get_log_events(
            logGroupName=fleet.names.background_job_log_group, logStreamName=job_stream_name(job_id)
        )["events"]
    except fleet.logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"] for event in events]


def _job(number: int, job_type: str = COUNTING) -> BackgroundJob:
    return BackgroundJob(
        job_id_for_message(f"trigger-{number}", 1_795_300_000_000 + number),
        job_type,
        f"corr-{number}",
        {"trigger": "test", "data": {"n": number}},
        "2026-12-02T10:00:00Z",
    )


def _send(fleet: AwsFleet, jobs: list[BackgroundJob]) -> None:
    for job in jobs:
        fleet.sqs.send_message(
            QueueUrl=fleet.urls.background, MessageBody=job.to_body(), MessageAttributes=job.message_attributes()
        )


def _ledger(fleet: AwsFleet) -> JobLedger:
    return JobLedger(dynamodb=fleet.dynamodb, table_name=fleet.names.job_ledger_table, lease_seconds=30)


@pytest.fixture
def run_workers(aws_fleet: AwsFleet) -> Iterator[Any]:
    """Start N background workers with the ledger on; stop them all at the end of the test."""
    shutdown = Shutdown()
    threads: list[threading.Thread] = []

    def start(count: int = 1, **overrides: Any) -> None:
        for _ in range(count):
            settings = aws_fleet.ledger_settings(BACKGROUND_JOB_SERVICE, receive_wait_seconds=1, **overrides)
            consumer = service.build(
                settings, shutdown, sqs=aws_fleet.sqs, logs=aws_fleet.logs, dynamodb=aws_fleet.dynamodb
            )
            thread = threading.Thread(target=consumer.run)
            thread.start()
            threads.append(thread)

    yield start
    shutdown.request("test finished")
    for thread in threads:
        thread.join(timeout=30)


def _drained(fleet: AwsFleet) -> bool:
    return fleet.depth(fleet.urls.background) == (0, 0)


def test_a_job_runs_once_and_its_result_is_in_the_ledger(aws_fleet, run_workers, effects):
    """queued -> running -> succeeded, with the job's JSON result and duration, and one run."""
    job = _job(1)
    _send(aws_fleet, [job])
    run_workers()
    wait_until(lambda: _drained(aws_fleet), timeout=30, what="the job settled")

    item = _ledger(aws_fleet).get(job.job_id)
    assert item is not None
    assert JobStatus.SUCCEEDED == item["status"]
    assert f'{{"jobId":"{job.job_id}","answer":42}}' == item["result"]
    assert "durationMs" in item
    assert {job.job_id: 1} == dict(effects.runs)


def test_a_redelivered_succeeded_job_is_deleted_without_running(aws_fleet, run_workers, effects):
    """A worker killed after success but before its delete: the redelivery is skipped and deleted."""
    job = _job(2)
    ledger = _ledger(aws_fleet)
    ledger.record([LedgerOutcome(job.job_id, JobStatus.SUCCEEDED, attempt=1, duration_ms=5)])
    _send(aws_fleet, [job])
    run_workers()
    wait_until(lambda: _drained(aws_fleet), timeout=30, what="the duplicate deleted")

    item = ledger.get(job.job_id)
    assert item is not None
    assert {} == dict(effects.runs)
    assert 1 == item["duplicatesSkipped"]
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)


def test_two_workers_racing_on_duplicate_messages_run_each_job_once(aws_fleet, run_workers, effects):
    """Every job sent twice (a re-sent SendMessageBatch entry) to two workers: each runs exactly once."""
    jobs = [_job(number) for number in range(10, 20)]
    _send(aws_fleet, jobs + jobs)
    run_workers(2, retry_base_seconds=1.0)
    wait_until(lambda: _drained(aws_fleet), timeout=90, what="all twenty messages settled")

    assert {job.job_id: 1 for job in jobs} == dict(effects.runs)
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)
    ledger = _ledger(aws_fleet)
    items = [ledger.get(job.job_id) or {} for job in jobs]
    assert [JobStatus.SUCCEEDED] * 10 == [item["status"] for item in items]
    assert 10 == sum(int(item.get("duplicatesSkipped", 0)) for item in items)


def test_an_unreachable_ledger_runs_nothing_unclaimed_and_loses_nothing(aws_fleet, run_workers, effects):
    """JOB_LEDGER_UNAVAILABLE=retry: while DynamoDB fails nothing runs; after it, each job runs once."""
    faults = FaultInjector(aws_fleet.dynamodb)
    faults.fail("UpdateItem", "unavailable")
    jobs = [_job(number) for number in range(30, 33)]
    _send(aws_fleet, jobs)
    run_workers(retry_base_seconds=1.0)
    wait_until(lambda: faults.injected.get("UpdateItem", 0) >= 8, timeout=60, what="two refused claims")
    assert {} == dict(effects.runs)

    faults.clear()
    wait_until(lambda: _drained(aws_fleet), timeout=60, what="the jobs settled after the outage")
    assert {job.job_id: 1 for job in jobs} == dict(effects.runs)
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)


def test_the_run_policy_keeps_jobs_running_through_a_ledger_outage(aws_fleet, run_workers, effects):
    """JOB_LEDGER_UNAVAILABLE=run: the fleet keeps working unclaimed (at-least-once) while DynamoDB fails."""
    faults = FaultInjector(aws_fleet.dynamodb)
    faults.fail("UpdateItem", "unavailable")
    jobs = [_job(number) for number in range(40, 43)]
    _send(aws_fleet, jobs)
    run_workers(job_ledger_unavailable="run")
    wait_until(lambda: _drained(aws_fleet), timeout=60, what="the jobs ran unclaimed")

    assert {job.job_id: 1 for job in jobs} == dict(effects.runs)


def test_an_unknown_job_type_is_dead_in_the_ledger_with_its_reason(aws_fleet, run_workers, effects):
    """Quarantined jobs are `dead` with the reason, so `fleet job` does not show them queued forever."""
    job = _job(50, job_type="no-such-job")
    _send(aws_fleet, [job])
    run_workers()
    wait_until(lambda: _drained(aws_fleet), timeout=30, what="the job quarantined")

    item = _ledger(aws_fleet).get(job.job_id)
    assert item is not None
    assert JobStatus.DEAD == item["status"]
    assert "unknown jobType 'no-such-job'" in item["deadReason"]


def _claimed(aws_fleet: AwsFleet, job: BackgroundJob) -> tuple[LedgerGate, Lease]:
    """``job`` sent, received and claimed through a gate, as the consumer admits a delivery."""
    _send(aws_fleet, [job])
    [raw] = aws_fleet.receive_all(aws_fleet.urls.background, attempts=1)
    [lease] = InFlight(30).open([InboundMessage.from_sqs(raw)])
    gate = LedgerGate(
        ledger=_ledger(aws_fleet), unavailable_policy="retry", metrics_emitter=MetricsEmitter("test", "test")
    )
    assert [lease] == gate.admit([lease])
    return gate, lease


def test_a_claim_released_unstarted_is_given_back_so_the_next_delivery_runs_at_once(aws_fleet):
    """Shutdown or a stale receive-ahead buffer releases a claimed job: the ledger frees it, not BUSY for a lease."""
    job = _job(60)
    gate, lease = _claimed(aws_fleet, job)

    gate.releasing([lease])

    item = _ledger(aws_fleet).get(job.job_id)
    assert item is not None
    assert JobStatus.QUEUED == item["status"]
    other = JobLedger(
        dynamodb=aws_fleet.dynamodb, table_name=aws_fleet.names.job_ledger_table, lease_seconds=30, worker_id="b"
    )
    assert [ClaimResult.CLAIMED] == other.claim([Claim(JobRef(job.job_id, COUNTING, "c"), "next-message", 2)])


def test_an_attempt_that_will_be_retried_is_retrying_in_the_ledger_not_failed(aws_fleet):
    """One vocabulary: a failed attempt with attempts left is `retrying` (a final failure is `dead`)."""
    job = _job(70)
    gate, lease = _claimed(aws_fleet, job)
    lease.finish(Outcome.retry("boom"))

    gate.settling([lease], lambda _lease: False)

    item = _ledger(aws_fleet).get(job.job_id)
    assert item is not None
    assert (JobStatus.RETRYING, "boom") == (item["status"], item["lastError"])


def test_a_job_cancelled_before_it_is_consumed_is_deleted_unrun(aws_fleet, run_workers, effects):
    """Cancelled before any claim (no item yet): never run, its message deleted, job.cancelled in its own stream."""
    job = _job(70)
    _cancel(aws_fleet, job.job_id)
    _send(aws_fleet, [job])
    run_workers()
    wait_until(lambda: _drained(aws_fleet), timeout=30, what="the cancelled job's message deleted")
    wait_until(
        lambda: any("job.cancelled" in line for line in _stream_events(aws_fleet, job.job_id)),
        timeout=30,
        what="job.cancelled in the job's stream",
    )

    assert {} == dict(effects.runs)
    assert JobStatus.CANCELLED == (_ledger(aws_fleet).get(job.job_id) or {})["status"]
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)


def test_a_redelivery_of_a_cancelled_job_is_deleted_unrun(aws_fleet, run_workers, effects):
    """Every later delivery of a cancelled job (a duplicate message) meets the same refusal."""
    job = _job(71)
    _cancel(aws_fleet, job.job_id)
    _send(aws_fleet, [job, job, job])
    run_workers()
    wait_until(lambda: _drained(aws_fleet), timeout=30, what="all three deliveries deleted")
    assert {} == dict(effects.runs)


def test_a_running_job_sees_the_cancel_on_its_context_and_stops(aws_fleet, run_workers, monkeypatch):
    """The lease extension tells the job within about half a visibility timeout; it stops, recorded cancelled."""
    long_job = LongJob(cooperative=True)
    _register(monkeypatch, "long", long_job)
    job = _job(72, job_type="long")
    _send(aws_fleet, [job])
    run_workers(visibility_timeout_seconds=4)
    assert long_job.started.wait(30)
    _cancel(aws_fleet, job.job_id)
    wait_until(lambda: _drained(aws_fleet), timeout=15, what="the cancelled job stopped and was deleted")

    item = _ledger(aws_fleet).get(job.job_id) or {}
    assert ["stopped"] == long_job.finished
    assert (JobStatus.CANCELLED, "test") == (item["status"], item["cancelledBy"])
    assert "finishedAt" in item
    assert "progress" in item
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)


def test_a_job_that_ignores_the_cancel_runs_to_the_end_and_the_ledger_keeps_both_facts(
    aws_fleet, run_workers, monkeypatch
):
    """It is told, finishes anyway, and the item shows succeeded with cancelRequestedAt."""
    long_job = LongJob(cooperative=False, seconds=5.0)
    _register(monkeypatch, "long", long_job)
    job = _job(73, job_type="long")
    _send(aws_fleet, [job])
    run_workers(visibility_timeout_seconds=2)
    assert long_job.started.wait(30)
    _cancel(aws_fleet, job.job_id)
    wait_until(lambda: _drained(aws_fleet), timeout=20, what="the job ran to its end")

    item = _ledger(aws_fleet).get(job.job_id) or {}
    assert long_job.saw_cancel.is_set()
    assert ["completed"] == long_job.finished
    assert JobStatus.SUCCEEDED == item["status"]
    assert "cancelRequestedAt" in item


def test_progress_reaches_the_ledger_while_the_job_runs(aws_fleet, run_workers, monkeypatch):
    """job.progress() costs no request; the next lease extension carries the latest report."""
    long_job = LongJob(cooperative=True)
    _register(monkeypatch, "long", long_job)
    job = _job(74, job_type="long")
    _send(aws_fleet, [job])
    run_workers(visibility_timeout_seconds=2)
    ledger = _ledger(aws_fleet)
    wait_until(lambda: "progress" in (ledger.get(job.job_id) or {}), timeout=30, what="progress in the ledger")

    item = ledger.get(job.job_id) or {}
    assert JobStatus.RUNNING == item["status"]
    assert item["progressNote"].startswith("step ")
    _cancel(aws_fleet, job.job_id)
    wait_until(lambda: _drained(aws_fleet), timeout=15, what="the job stopped")


def test_a_cancelled_job_that_fails_is_not_retried(aws_fleet, run_workers, monkeypatch):
    """Its retry would be refused by the ledger anyway: the message is deleted at once, the item stays cancelled."""
    runs: list[str] = []

    def fails_once_cancelled(context: JobContext) -> None:
        runs.append(context.job_id)
        context.cancelled.wait(30)
        raise RuntimeError("the cleanup after the cancel went wrong")

    _register(monkeypatch, "fragile", fails_once_cancelled)
    job = _job(75, job_type="fragile")
    _send(aws_fleet, [job])
    # A retry would wait out a 60 s backoff before its redelivery was refused: "at once" is observable.
    run_workers(visibility_timeout_seconds=2, retry_base_seconds=60.0)
    wait_until(lambda: runs, timeout=30, what="the job started")
    _cancel(aws_fleet, job.job_id)
    wait_until(lambda: _drained(aws_fleet), timeout=20, what="the failed, cancelled job's message deleted")

    item = _ledger(aws_fleet).get(job.job_id) or {}
    assert [job.job_id] == runs
    assert (JobStatus.CANCELLED, 1) == (item["status"], item["attempts"])
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)


#: The ledger's writes, before and after it moves from TransactWriteItems to single-item UpdateItem.
LEDGER_WRITES = ("TransactWriteItems", "UpdateItem")


def _never_last(_lease: Lease) -> bool:
    return False


def test_a_job_s_outcome_is_in_the_ledger_the_moment_it_returns(aws_fleet):
    """Recorded on return, before the log ships and the delete is batched; settling then writes nothing more."""
    job = _job(80)
    gate, lease = _claimed(aws_fleet, job)

    gate.returned(lease, Outcome.done(result_json='{"answer": 42}'), _never_last)
    item = _ledger(aws_fleet).get(job.job_id)
    writes = aws_fleet.requests.total(*LEDGER_WRITES)
    lease.finish(Outcome.done(result_json='{"answer": 42}'))
    gate.settling([lease], _never_last)

    assert item is not None
    assert (JobStatus.SUCCEEDED, '{"answer": 42}') == (item["status"], item["result"])
    assert writes == aws_fleet.requests.total(*LEDGER_WRITES)


def test_an_outcome_whose_early_write_failed_is_written_before_the_delete(aws_fleet):
    """DynamoDB failing the write at return costs nothing: settling writes the outcome before the delete."""
    job = _job(81)
    gate, lease = _claimed(aws_fleet, job)
    faults = FaultInjector(aws_fleet.dynamodb)
    for operation in LEDGER_WRITES:
        faults.fail(operation, "unavailable")

    gate.returned(lease, Outcome.done(), _never_last)
    faults.clear()
    running = _ledger(aws_fleet).get(job.job_id)
    lease.finish(Outcome.done())
    gate.settling([lease], _never_last)

    item = _ledger(aws_fleet).get(job.job_id)
    assert running is not None
    assert item is not None
    assert (JobStatus.RUNNING, JobStatus.SUCCEEDED) == (running["status"], item["status"])


def test_a_retry_refused_at_return_because_the_job_was_cancelled_becomes_a_delete(aws_fleet):
    """The cancel wins over the early write of a failure: settling turns the retry into a delete."""
    job = _job(82)
    gate, lease = _claimed(aws_fleet, job)
    _cancel(aws_fleet, job.job_id)

    gate.returned(lease, Outcome.retry("boom"), _never_last)
    lease.finish(Outcome.retry("boom"))
    gate.settling([lease], _never_last)

    assert Outcome.stopped_on_cancel() == lease.outcome


def test_a_job_whose_outcome_is_recorded_has_no_lease_extended(aws_fleet):
    """A succeeded job whose delete is still being retried: no lease write, no false lease_lost."""
    job = _job(83)
    gate, lease = _claimed(aws_fleet, job)
    _ledger(aws_fleet).record([LedgerOutcome(job.job_id, JobStatus.SUCCEEDED, 1)])
    lease.ledger_recorded = True  # as the gate marks it once the outcome is written
    writes = aws_fleet.requests.total(*LEDGER_WRITES)

    with capture_logs() as logs:
        gate.extended([lease])

    assert [] == [entry for entry in logs if entry["event"] == "ledger.lease_lost"]
    assert writes == aws_fleet.requests.total(*LEDGER_WRITES)


def test_the_ledger_lease_ends_when_the_delivery_s_visibility_does(aws_fleet):
    """The extension carries the delivery's new visibility end, not the client's own lease length."""
    job = _job(84)
    gate, lease = _claimed(aws_fleet, job)
    lease.visible_again_at = lease.registry.clock() + 3600  # extended for an hour; the ledger's lease_seconds is 30

    gate.extended([lease])

    item = _ledger(aws_fleet).get(job.job_id)
    assert item is not None
    assert item["leaseUntilMs"] > (time.time() + 3000) * 1000


# -- issue 32: validation first, leases tied to visibility, attempts, busy copies ---------------------

WALL_NOW = 1_800_000_000.0


def _gate(fleet: AwsFleet, *, max_receive_count: int = 20, worker: str = "gate-worker") -> LedgerGate:
    ledger = JobLedger(
        dynamodb=fleet.dynamodb,
        table_name=fleet.names.job_ledger_table,
        lease_seconds=30,
        worker_id=worker,
        clock=lambda: WALL_NOW,
    )
    return LedgerGate(
        ledger=ledger,
        unavailable_policy="retry",
        metrics_emitter=MetricsEmitter("test", "test"),
        max_receive_count=max_receive_count,
        wall_clock=lambda: WALL_NOW,
    )


def _delivery(fleet: AwsFleet, job: BackgroundJob, *, receive_count: int = 1, received_at: float = 100.0) -> Lease:
    """A received delivery of ``job``, as SQS would hand it over on its ``receive_count``-th receive."""
    _send(fleet, [job])
    [raw] = fleet.receive_all(fleet.urls.background, attempts=1)
    message = InboundMessage.from_sqs(raw)
    delivery = InboundMessage(
        message.message_id,
        message.receipt_handle,
        message.body,
        receive_count,
        message.sent_timestamp_ms,
        message.attributes,
        received_at=received_at,
    )
    [lease] = InFlight(30, clock=lambda: received_at + 4.0).open([delivery])
    return lease


def test_the_claims_lease_ends_when_the_deliverys_visibility_ends(aws_fleet):
    """Received 4 s before the claim with a 30 s visibility: the lease ends 26 s after the claim, not 30."""
    job = _job(100)
    lease = _delivery(aws_fleet, job)

    assert [lease] == _gate(aws_fleet).admit([lease])

    item = _ledger(aws_fleet).get(job.job_id) or {}
    assert int((WALL_NOW + 26.0) * 1000) == item["leaseUntilMs"]
    assert 1 == lease.attempts


def test_a_claimed_delivery_tells_the_job_which_run_it_is_not_which_receive(aws_fleet):
    """A redriven job's receive count starts again at 1, but the runner's events and context say run 2."""
    job = _job(105)
    first = _delivery(aws_fleet, job)
    gate = _gate(aws_fleet)
    gate.admit([first])
    gate.returned(first, Outcome.retry("DiagnosticFailure"), lambda _lease: False)  # run 1 failed: retrying
    redriven = _delivery(aws_fleet, job, receive_count=1)

    assert [redriven] == _gate(aws_fleet).admit([redriven])

    assert (1, 2, 2) == (redriven.message.receive_count, redriven.message.attempt, redriven.attempts)


def test_a_busy_copy_comes_back_after_the_holders_lease_and_is_no_attempt(aws_fleet):
    """Another message of a running job waits until the holder's lease ends (and a little), costing no attempt."""
    job = _job(101)
    holder = _delivery(aws_fleet, job)
    _gate(aws_fleet, worker="holder").admit([holder])
    copy = _delivery(aws_fleet, job, receive_count=2)

    assert [] == _gate(aws_fleet).admit([copy])

    assert copy.outcome is not None
    assert copy.outcome.delay_seconds is not None
    assert 26 < copy.outcome.delay_seconds <= 26 + 3
    assert 0 == copy.attempts


def test_a_busy_copy_on_its_last_allowed_receive_is_deleted_while_the_holder_runs(aws_fleet):
    """The queue would dead-letter it next: it is deleted (the holder's message carries the job), and says so."""
    job = _job(102)
    holder = _delivery(aws_fleet, job)
    _gate(aws_fleet, worker="holder").admit([holder])
    copy = _delivery(aws_fleet, job, receive_count=20)

    with capture_logs() as logs:
        assert [] == _gate(aws_fleet, max_receive_count=20).admit([copy])

    assert Outcome.done() == copy.outcome
    [deleted] = [entry for entry in logs if entry["event"] == "job.duplicate_copy_deleted"]
    assert (job.job_id, int((WALL_NOW + 26.0) * 1000)) == (deleted["job_id"], deleted["holder_lease_until_ms"])


def test_an_unknown_job_type_carrying_a_succeeded_jobs_id_is_quarantined_not_skipped(aws_fleet, run_workers, effects):
    """Validation comes before the duplicate check: the bad message reaches the DLQ with its reason."""
    job = _job(103)
    _ledger(aws_fleet).record([LedgerOutcome(job.job_id, JobStatus.SUCCEEDED, attempt=1, duration_ms=5)])
    impostor = BackgroundJob(job.job_id, "no-such-job", job.correlation_id, job.trigger, job.enqueued_at)
    _send(aws_fleet, [impostor])
    run_workers()
    wait_until(lambda: _drained(aws_fleet), timeout=30, what="the impostor settled")

    [parked] = aws_fleet.receive_all(aws_fleet.urls.background_dlq)
    assert "unknown jobType 'no-such-job'" in parked["MessageAttributes"]["QuarantineReason"]["StringValue"]
    item = _ledger(aws_fleet).get(job.job_id) or {}
    assert (JobStatus.SUCCEEDED, None) == (item["status"], item.get("duplicatesSkipped"))
