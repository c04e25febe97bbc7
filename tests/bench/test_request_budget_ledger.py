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
RECEIVE_WAIT_SECONDS = 5


def test_with_the_ledger_100_short_jobs_cost_at_most_3_requests_per_job(aws_fleet: AwsFleet) -> None:
    """queued, claim and outcome are batched like the SQS calls: <= 3.0 requests per job, every job succeeded.

    Issue 13's target is 2.9 in the benchmark; in-process it measured 2.95 (2026-12-02), because the
    loop settles in batches smaller than ten and each settle batch is one ledger write. The guard sits
    at 3.0 so that a lost batching (one write per job would be 3.5+) fails.
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
    assert JOBS == len(listing.jobs)
    assert calls.get("TransactWriteItems", 0) <= 3 * JOBS // 10 + 6, calls  # about one per ten per state change
    print(f"requests per job with the ledger: {sum(calls.values()) / JOBS:.2f} {calls}")  # noqa: T201 - shown with -s
    assert sum(calls.values()) / JOBS <= 3.0, calls
