"""``python -m bench.ledger_client``: client CPU for one job's ledger writes, against the least botocore does.

With the job ledger on, background_job makes two DynamoDB calls per job, each a conditional single-item
``UpdateItem`` (1 write unit): the claim and the outcome (common/ledger/client.py). Issue 28 asked that the
ledger add at most 1.5 ms of worker CPU per job; the full bench measures about +2.7 ms. This probe
splits that figure: the ledger's two writes as :class:`JobLedger` makes them, beside two of the smallest
``UpdateItem`` calls botocore can make (one ``SET``, no condition, no return values) on the same client.
The second row is the floor of any design that writes twice per job with boto3's standard client: the
gap to the target cannot be closed by a leaner request, only by fewer requests per job, and DynamoDB's
only batch write that keeps 1 unit per item and a condition per item is PartiQL's
``BatchExecuteStatement``, which moto neither parses with a non-key condition nor refuses on a missing
item (docs/performance.md).

Both callers run in this process, interleaved, against one embedded emulator and one ledger table; the
figures are this thread's CPU milliseconds per job (two requests), the median of ``--rounds``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from botocore.config import Config
from ulid import ULID

from bench.client_probe import interleaved_medians, probe_emulator, probe_main
from common.ledger.client import Claim, JobLedger, JobRef, LedgerOutcome
from common.ledger.schema import JobStatus
from fleet.local.provision import provision_job_ledger

TABLE: Final = "probe-jobs"
LEDGER: Final = "ledger (claim + outcome)"
#: The floor the ledger's writes are compared with.
MINIMAL: Final = "minimal UpdateItem x2"
#: One job's two writes, given a fresh job ID.
JobWrites = Callable[[str], None]


def ledger_writes(ledger: JobLedger) -> JobWrites:
    """The worker's path: the claim (it creates the item) and the outcome of a job that succeeded."""

    def job(job_id: str) -> None:
        [answer] = ledger.claim_details([Claim(JobRef(job_id, "probe", "probe-correlation"), f"m-{job_id}", 1)])
        if answer.attempts != 1:
            raise RuntimeError(f"claim of {job_id} answered {answer}")
        ledger.record([LedgerOutcome(job_id, JobStatus.SUCCEEDED, 1, duration_ms=1)])

    return job


def minimal_writes(dynamodb: Any) -> JobWrites:  # noqa: ANN401 - a boto3 DynamoDB client
    """The floor: two one-attribute ``UpdateItem`` calls on the same item, on the same client."""

    def job(job_id: str) -> None:
        for status in (JobStatus.RUNNING, JobStatus.SUCCEEDED):
            dynamodb.update_item(
                TableName=TABLE,
                Key={"jobId": {"S": job_id}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": status.value}},
            )

    return job


def job_cpu_ms(writes: JobWrites, jobs: int) -> float:
    """This thread's CPU per job for ``jobs`` fresh job IDs."""
    ids = [str(ULID()) for _ in range(jobs)]
    started = time.thread_time()
    for job_id in ids:
        writes(job_id)
    return (time.thread_time() - started) / jobs * 1000


def measure(jobs: int, rounds: int) -> dict[str, float]:
    """Median CPU ms per job for each caller, interleaved round by round on one emulator."""
    with probe_emulator() as (endpoint, session):
        # The workers' client settings (common/aws.py), at the emulator's address.
        config = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=5, read_timeout=10)
        dynamodb = session.client("dynamodb", endpoint_url=endpoint, config=config)
        try:
            provision_job_ledger(dynamodb, TABLE)
            ledger = JobLedger(dynamodb=dynamodb, table_name=TABLE, lease_seconds=60)
            callers = {LEDGER: ledger_writes(ledger), MINIMAL: minimal_writes(dynamodb)}
            for writes in callers.values():
                writes(str(ULID()))  # connection and first-call costs out of the figures
            return interleaved_medians(
                {name: partial(job_cpu_ms, writes, jobs) for name, writes in callers.items()}, rounds
            )
        finally:
            dynamodb.close()


def main(argv: list[str] | None = None) -> int:
    return probe_main(
        argv,
        description=__doc__.splitlines()[0],
        prog="python -m bench.ledger_client",
        measure=measure,
        floor=MINIMAL,
        jobs=300,
    )


if __name__ == "__main__":
    sys.exit(main())
