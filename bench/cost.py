"""Cost per million jobs on AWS, from the figures a run measured and list prices stated with their date.

Only per-job costs are modelled: requests, log ingestion, Fargate time at the measured CPU per job, and
the job ledger's DynamoDB request units (counted by bench.dynamodb_cost from the item writes the
emulator recorded). Fixed costs (an idle long poll, alarms, a NAT gateway, DynamoDB storage) are in
docs/deploy.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Prices:
    """us-east-1 list prices in USD. Check them against the AWS pricing pages before relying on them."""

    as_of: str = "2026-06 (us-east-1 list prices; no free tier, no Savings Plans)"
    sqs_per_million_requests: float = 0.40  # standard queue; each 64 KB of payload is one request
    logs_ingestion_per_gb: float = 0.50  # standard log class; API calls themselves are not billed
    logs_event_overhead_bytes: int = 26  # CloudWatch Logs bills each event's size plus 26 bytes
    fargate_vcpu_hour: float = 0.04048  # Linux/x86_64
    fargate_gb_hour: float = 0.004445
    #: DynamoDB on-demand, us-east-1, since the 2024-11-01 price cut (aws.amazon.com/dynamodb/pricing/on-demand/,
    #: checked 2026-12-04). Standard table class; TTL deletes are free.
    dynamodb_as_of: str = "2024-11-01 (us-east-1 on-demand, standard table class; checked 2026-12-04)"
    dynamodb_per_million_write_units: float = 0.625
    dynamodb_per_million_read_units: float = 0.125


PRICES: Final = Prices()
#: The task size in tf/variables.tf: 256 CPU units and 512 MiB.
TASK_VCPU: Final = 0.25
TASK_GB: Final = 0.5
SQS_OPERATIONS: Final = frozenset(
    {
        "ReceiveMessage",
        "SendMessage",
        "SendMessageBatch",
        "DeleteMessage",
        "DeleteMessageBatch",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
    }
)


@dataclass(frozen=True, slots=True)
class DynamoDbUnits:
    """DynamoDB request units per job: writes to the table, writes to its indexes, reads."""

    table_writes: float = 0.0
    index_writes: float = 0.0
    reads: float = 0.0


@dataclass(frozen=True, slots=True)
class CostPerMillion:
    sqs_requests: float
    logs_ingestion: float
    fargate: float
    dynamodb_table: float = 0.0
    dynamodb_indexes: float = 0.0

    @property
    def total(self) -> float:
        return self.sqs_requests + self.logs_ingestion + self.fargate + self.dynamodb_table + self.dynamodb_indexes


def fargate_seconds_per_job(cpu_seconds_per_job: float) -> float:
    """Task-seconds one job occupies when a task's 0.25 vCPU is the bottleneck (CPU-bound sizing).

    A task can do at most 0.25 CPU-seconds of work per second, so a job that needs ``c`` CPU-seconds
    occupies ``c / 0.25`` task-seconds. I/O-bound jobs that leave the CPU idle cost more than this:
    size those by wall time per job divided by WORKER_CONCURRENCY instead (docs/performance.md).
    """
    return cpu_seconds_per_job / TASK_VCPU


def cost_per_million(
    requests_by_operation: dict[str, float],
    cpu_seconds_per_job: float,
    log_bytes_per_job: float,
    prices: Prices = PRICES,
    *,
    dynamodb: DynamoDbUnits = DynamoDbUnits(),
    task_seconds_per_job: float | None = None,
) -> CostPerMillion:
    """USD per million jobs, from per-job requests, CPU seconds (all worker processes), log bytes and DynamoDB units.

    ``task_seconds_per_job`` replaces the CPU-bound Fargate sizing when a pipeline is sized otherwise (the
    seed-style baseline: one job per task-second).
    """
    sqs = sum(count for name, count in requests_by_operation.items() if name in SQS_OPERATIONS)
    seconds = fargate_seconds_per_job(cpu_seconds_per_job) if task_seconds_per_job is None else task_seconds_per_job
    task_hours = seconds * 1e6 / 3600
    return CostPerMillion(
        sqs_requests=round(sqs * prices.sqs_per_million_requests, 4),
        logs_ingestion=round(log_bytes_per_job * 1e6 / 1e9 * prices.logs_ingestion_per_gb, 4),
        fargate=round(task_hours * (TASK_VCPU * prices.fargate_vcpu_hour + TASK_GB * prices.fargate_gb_hour), 4),
        dynamodb_table=round(
            dynamodb.table_writes * prices.dynamodb_per_million_write_units
            + dynamodb.reads * prices.dynamodb_per_million_read_units,
            4,
        ),
        dynamodb_indexes=round(dynamodb.index_writes * prices.dynamodb_per_million_write_units, 4),
    )


def describe_prices(prices: Prices = PRICES) -> dict[str, object]:
    return asdict(prices)
