"""Cost per million jobs on AWS, from the figures a run measured and list prices stated with their date.

Only per-job costs are modelled: requests, log ingestion, and Fargate time at the measured CPU per
job. Fixed costs (an idle long poll, alarms, a NAT gateway) are in docs/deploy.md.
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
class CostPerMillion:
    sqs_requests: float
    logs_ingestion: float
    fargate: float

    @property
    def total(self) -> float:
        return self.sqs_requests + self.logs_ingestion + self.fargate


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
) -> CostPerMillion:
    """USD per million jobs, from per-job requests, CPU seconds (all worker processes) and log bytes."""
    sqs = sum(count for name, count in requests_by_operation.items() if name in SQS_OPERATIONS)
    task_hours = fargate_seconds_per_job(cpu_seconds_per_job) * 1e6 / 3600
    return CostPerMillion(
        sqs_requests=round(sqs * prices.sqs_per_million_requests, 4),
        logs_ingestion=round(log_bytes_per_job * 1e6 / 1e9 * prices.logs_ingestion_per_gb, 4),
        fargate=round(task_hours * (TASK_VCPU * prices.fargate_vcpu_hour + TASK_GB * prices.fargate_gb_hour), 4),
    )


def describe_prices(prices: Prices = PRICES) -> dict[str, object]:
    return asdict(prices)
