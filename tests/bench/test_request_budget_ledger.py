"""Counted, never timed: what the job ledger adds to a batch of short jobs (docs/ledger.md, "What it costs")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.ledger.schema import JobStatus
from common.settings import DEFAULT_WORKER_CONCURRENCY
from common.sqs.shutdown import Shutdown
from fleet.cli.ledger import Ledger
from tests.bench.fleet_run import build_consumers, run_jobs, send_triggers, uncounted_sqs
from tests.conftest import AwsFleet
from tests.consumer_thread import consumers_running

JOBS = 100
#: The job ledger's requests (DynamoDB bills their write units, not the requests).
LEDGER_CALLS = frozenset({"TransactWriteItems", "UpdateItem", "GetItem", "BatchGetItem", "Query"})
RECEIVE_WAIT_SECONDS = 5


def test_with_the_ledger_100_short_jobs_cost_3_ledger_writes_and_at_most_2_6_other_requests_per_job(
    aws_fleet: AwsFleet,
) -> None:
    """The claim and the outcome are one single-item UpdateItem each (issues 28, 32; main_job writes no
    queued item): 2 per job, every job succeeded, and the SQS and Logs requests stay at <= 2.6 per job.

    DynamoDB bills write units, not requests: a conditional UpdateItem costs 1 write unit per item where a
    transaction's item costs 2, so the ledger's request count grew (one per job per state change, written
    concurrently) to halve its write units. What is billed per request (SQS, Logs) must not grow.
    """
    sqs = uncounted_sqs()
    shutdown = Shutdown()
    consumers = build_consumers(
        aws_fleet,
        shutdown,
        ledger=True,
        concurrency=DEFAULT_WORKER_CONCURRENCY,
        receive_wait_seconds=RECEIVE_WAIT_SECONDS,
    )
    send_triggers(sqs, aws_fleet.urls.trigger, JOBS)
    with consumers_running(consumers, shutdown, join_seconds=60):
        calls = run_jobs(aws_fleet, sqs, JOBS, send=False)

    now = datetime.now(UTC)
    listing = Ledger(aws_fleet.dynamodb, aws_fleet.names.job_ledger_table).queued_since(
        now - timedelta(hours=1), now=now, statuses=[JobStatus.SUCCEEDED]
    )
    assert JOBS == len(listing.jobs)
    ledger_writes = calls.get("UpdateItem", 0)
    others = sum(count for name, count in calls.items() if name not in LEDGER_CALLS)
    print(f"requests per job with the ledger: {sum(calls.values()) / JOBS:.2f} {calls}")  # noqa: T201 - shown with -s
    assert 2 * JOBS == ledger_writes, calls  # claim, outcome: no lease extension for a short job, none from main_job
    assert 0 == calls.get("TransactWriteItems", 0), calls
    assert others / JOBS <= 2.6, calls
