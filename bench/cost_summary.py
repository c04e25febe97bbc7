"""What a job costs at the defaults (ledger on), beside the ledger-off fleet and the seed-style pipeline.

The fleet's headline scenarios (``fleet-noop``, ``fleet-io``) run with the job ledger, as Terraform and the
local fleet deploy it; ``<label>-ledger-off`` runs the same without. The seed-style pipeline is the naive
scenario costed by the same model with its own sizing: sequential, one job per task-second (its Fargate
line), its own requests and log lines, no ledger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Final

from bench.cost import SQS_OPERATIONS, DynamoDbUnits, cost_per_million
from bench.harness import ScenarioResult

TARGET_COST_PER_MILLION: Final = 3.00
TARGET_WRITE_UNITS_PER_JOB: Final = 4.0
TARGET_SEED_RATIO: Final = 2.0
TARGET_SQS_LOGS_REQUESTS: Final = 2.6
TARGET_CPU_GROWTH_MS: Final = 1.5
#: The seed-style design: one job per task-second, whatever the job.
SEED_TASK_SECONDS_PER_JOB: Final = 1.0
#: The fleet's scenarios and the naive scenario of the same job.
KINDS: Final = {"noop": ("fleet-noop", "naive-noop"), "io-200ms": ("fleet-io", "naive-io")}
LOG_OPERATIONS: Final = frozenset({"CreateLogStream", "PutLogEvents"})
READ_OPERATIONS: Final = frozenset({"GetItem"})


def ledger_off_label(label: str) -> str:
    return f"{label}-ledger-off"


def dynamodb_units(result: ScenarioResult) -> DynamoDbUnits:
    """Write units from the recorded item writes; each GetItem (strongly consistent, items under 4 KB) 1 read unit."""
    units = result.dynamodb_units_per_job
    return DynamoDbUnits(
        table_writes=units.get("table", 0.0),
        index_writes=sum(value for name, value in units.items() if name.startswith("index:")),
        reads=sum(n for name, n in result.requests_by_operation.items() if name in READ_OPERATIONS),
    )


def cost(result: ScenarioResult, task_seconds_per_job: float | None = None) -> dict[str, float]:
    """The bill per million jobs, line by line, and the log bytes it assumed."""
    log_bytes = result.job_stream_bytes + result.stdout_bytes_per_job + 26 * result.stdout_lines_per_job
    bill = cost_per_million(
        result.requests_by_operation,
        sum(result.cpu_seconds_per_job.values()),
        log_bytes,
        dynamodb=dynamodb_units(result),
        task_seconds_per_job=task_seconds_per_job,
    )
    return {**asdict(bill), "total": round(bill.total, 4), "log_bytes_per_job": round(log_bytes, 1)}


def sqs_logs_requests(result: ScenarioResult) -> float:
    """The billed requests per job (SQS) plus the Logs calls: the request target's measure."""
    return round(
        sum(n for name, n in result.requests_by_operation.items() if name in SQS_OPERATIONS | LOG_OPERATIONS), 3
    )


def dynamodb_requests(result: ScenarioResult) -> float:
    """DynamoDB requests per job: not billed on demand (units are), reported beside the units."""
    other = SQS_OPERATIONS | LOG_OPERATIONS | {"GetQueueUrl", "GetQueueAttributes"}
    return round(sum(n for name, n in result.requests_by_operation.items() if name not in other), 3)


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 2) if denominator and not math.isnan(denominator) else math.nan


def _kind(by: Mapping[str, ScenarioResult], label: str, naive_label: str) -> dict[str, Any]:
    on, off, naive = by[label], by.get(ledger_off_label(label)), by.get(naive_label)
    at_defaults = cost(on)
    seed = cost(naive, SEED_TASK_SECONDS_PER_JOB) if naive else None
    units = on.dynamodb_units_per_job
    return {
        "ledger": on.ledger_table_used,
        "cost_per_million_usd": at_defaults,
        "cost_per_million_usd_ledger_off": cost(off) if off else None,
        "seed_cost_per_million_usd": seed,
        "seed_over_fleet": _ratio(seed["total"], at_defaults["total"]) if seed else math.nan,
        "dynamodb_write_units_per_job": {
            "table": units.get("table", 0.0),
            **{name.removeprefix("index:"): v for name, v in units.items() if name.startswith("index:")},
            "total": round(units.get("table", 0.0) + sum(v for n, v in units.items() if n.startswith("index:")), 3),
        },
        "dynamodb_item_writes_per_job": units.get("writes", 0.0),
        "dynamodb_refused_writes_per_job": units.get("refused_writes", 0.0),
        "dynamodb_requests_per_job": dynamodb_requests(on),
        "sqs_logs_requests_per_job": sqs_logs_requests(on),
        "worker_cpu_ms_per_job": round(1000 * sum(on.cpu_seconds_per_job.values()), 2),
        "worker_cpu_ms_per_job_ledger_off": round(1000 * sum(off.cpu_seconds_per_job.values()), 2) if off else None,
        "throughput_vs_ledger_off": _ratio(on.jobs_per_second, off.jobs_per_second) if off else math.nan,
    }


def at_defaults(by: Mapping[str, ScenarioResult]) -> dict[str, Any]:
    """Per job kind: the bill at the defaults, ledger off beside it, the seed-style pipeline's, and the targets."""
    return {
        "kinds": {kind: _kind(by, label, naive) for kind, (label, naive) in KINDS.items() if label in by},
        "targets": {
            "cost_per_million_usd": TARGET_COST_PER_MILLION,
            "dynamodb_write_units_per_job": TARGET_WRITE_UNITS_PER_JOB,
            "seed_over_fleet": TARGET_SEED_RATIO,
            "sqs_logs_requests_per_job": TARGET_SQS_LOGS_REQUESTS,
            "worker_cpu_growth_ms": TARGET_CPU_GROWTH_MS,
        },
        "seed_task_seconds_per_job": SEED_TASK_SECONDS_PER_JOB,
    }


def _money(bill: Mapping[str, float] | None) -> str:
    if not bill:
        return "n/a"
    return (
        f"{bill['total']:.2f} (SQS {bill['sqs_requests']:.2f}, Logs {bill['logs_ingestion']:.2f}, "
        f"Fargate {bill['fargate']:.2f}, DynamoDB table {bill['dynamodb_table']:.2f}, "
        f"indexes {bill['dynamodb_indexes']:.2f})"
    )


def markdown_lines(section: Mapping[str, Any], as_of: str) -> list[str]:
    """The Markdown section "Cost at the defaults"."""
    targets = section["targets"]
    lines = [
        f"Prices: {as_of}. USD per million jobs; the headline runs with the job ledger on (JOB_LEDGER_TABLE, as",
        "Terraform and the local fleet deploy it). DynamoDB write units come from the item writes the emulator",
        "recorded, billed by AWS's rules (bench/dynamodb_cost.py); the seed-style pipeline is the naive scenario at",
        f"{section['seed_task_seconds_per_job']:.0f} task-second per job.",
        "",
    ]
    for kind, row in section["kinds"].items():
        units = row["dynamodb_write_units_per_job"]
        by_part = ", ".join(f"{name} {value:.2f}" for name, value in units.items() if name != "total")
        cpu_off = row["worker_cpu_ms_per_job_ledger_off"]
        lines += [
            f"- **{kind}**: {_money(row['cost_per_million_usd'])} (target <= {targets['cost_per_million_usd']:.2f});"
            f" ledger off {_money(row['cost_per_million_usd_ledger_off'])}",
            f"  - seed-style pipeline {_money(row['seed_cost_per_million_usd'])}: {row['seed_over_fleet']}x the"
            f" fleet's cost (target >= {targets['seed_over_fleet']})",
            f"  - DynamoDB write units per job {units['total']:.2f}"
            f" (target <= {targets['dynamodb_write_units_per_job']}):"
            f" {by_part}; {row['dynamodb_item_writes_per_job']:.2f} item writes"
            f" ({row['dynamodb_refused_writes_per_job']:.2f} refused by a condition),"
            f" {row['dynamodb_requests_per_job']:.2f} DynamoDB requests (not billed)",
            f"  - SQS + Logs requests per job {row['sqs_logs_requests_per_job']:.2f}"
            f" (target <= {targets['sqs_logs_requests_per_job']}); workers' CPU {row['worker_cpu_ms_per_job']:.2f} ms"
            f" per job against {cpu_off if cpu_off is not None else 'n/a'} ms ledger off"
            f" (target: at most +{targets['worker_cpu_growth_ms']} ms); throughput"
            f" {row['throughput_vs_ledger_off']}x ledger off",
        ]
    return lines
