"""Counted, never timed: what the job ledger adds to a batch of short jobs (docs/ledger.md, "What it costs")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.ledger.schema import JobStatus
from common.settings import DEFAULT_WORKER_CONCURRENCY
from common.sqs.shutdown import Shutdown
from fleet.cli.ledger import Ledger
from tests.bench.fleet_run import build_consumers, run_jobs, running, send_triggers, uncounted_sqs
from tests.conftest import AwsFleet

JOBS = 100
#: The job ledger's requests (DynamoDB bills their write units, not the requests).
LEDGER_CALLS = frozenset({"TransactWriteItems", "UpdateItem", "GetItem", "BatchGetItem", "Query"})
RECEIVE_WAIT_SECONDS = 5


def test_with_the_ledger_100_short_jobs_cost_one_outcome_write_each_and_batched_sqs_and_logs_calls(
    aws_fleet: AwsFleet,
) -> None:
    """The claim is batched like the SQS calls (main_job writes no queued item); each outcome is one write
    of its own, made the moment its job returns (issue 32: a crash before a batched write re-ran finished
    jobs). DynamoDB on demand bills write units, not requests, and a one-item write costs the same units alone or in a
    batch, so only the SQS and Logs requests are held to a budget: issue 28's 2.6 per job (measured 2.54 on
    2026-12-04: two Logs calls per job, the rest SQS). The ledger's writes are counted separately.
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
    with running(consumers, shutdown):
        calls = run_jobs(aws_fleet, sqs, JOBS, send=False)

    now = datetime.now(UTC)
    listing = Ledger(aws_fleet.dynamodb, aws_fleet.names.job_ledger_table).queued_since(
        now - timedelta(hours=1), now=now, statuses=[JobStatus.SUCCEEDED]
    )
    succeeded = len(listing.jobs)
    ledger_writes = calls.get("TransactWriteItems", 0) + calls.get("UpdateItem", 0)
    billed = sum(count for operation, count in calls.items() if operation not in LEDGER_CALLS)
    print(f"requests per job with the ledger: {sum(calls.values()) / JOBS:.2f} {calls}")  # noqa: T201 - shown with -s
    assert JOBS == succeeded
    # about one per ten for the claim, one per job for the outcome; none from main_job
    assert ledger_writes <= JOBS // 10 + JOBS + 6, calls
    assert billed / JOBS <= 2.6, calls
