"""The bill at the defaults: DynamoDB lines from the recorded write units, and the seed-style pipeline's sizing."""

from __future__ import annotations

from typing import Any

import pytest

from bench.cost import PRICES
from bench.cost_summary import at_defaults, cost
from bench.harness import ScenarioResult


def _result(label: str, **overrides: Any) -> ScenarioResult:
    fields: dict[str, Any] = {
        "label": label,
        "pipeline": "fleet",
        "workload": "noop",
        "concurrency": 10,
        "jobs": 100,
        "rate": None,
        "wall_seconds": 1.0,
        "jobs_per_second": 100.0,
        "requests_per_job": 2.5,
        "requests_by_operation": {"ReceiveMessage": 0.2, "CreateLogStream": 1.0, "PutLogEvents": 1.0},
        "latency_ms": {},
        "cpu_seconds_per_job": {"main_job": 0.001, "background_job": 0.003},
        "peak_rss_mb": {},
        "threads_at_end": {},
        "emulator_cpu_seconds_per_job": 0.0,
        "stdout_bytes_per_job": 0.0,
        "stdout_lines_per_job": 0.0,
        "job_stream_bytes": 0.0,
    }
    return ScenarioResult(**(fields | overrides))


def test_write_units_per_job_become_the_dynamodb_table_and_index_lines() -> None:
    """3 table units and 1 index unit per job at $0.625 per million write units: $1.875 and $0.625."""
    result = _result("fleet-noop", ledger_table_used=True, dynamodb_units_per_job={"table": 3.0, "index:by-day": 1.0})

    bill = cost(result)

    assert (1.875, 0.625) == (bill["dynamodb_table"], bill["dynamodb_indexes"])
    assert pytest.approx(bill["sqs_requests"] + bill["logs_ingestion"] + bill["fargate"] + 2.5) == bill["total"]


def test_the_seed_style_pipeline_pays_one_task_second_per_job() -> None:
    """The naive scenario is sized at one job per task-second, whatever its CPU: 1e6 task-seconds per million."""
    kinds = at_defaults(
        {
            "fleet-noop": _result("fleet-noop", ledger_table_used=True, dynamodb_units_per_job={"table": 3.0}),
            "naive-noop": _result("naive-noop", pipeline="naive"),
        }
    )["kinds"]

    task_hour = 0.25 * PRICES.fargate_vcpu_hour + 0.5 * PRICES.fargate_gb_hour
    assert round(1e6 / 3600 * task_hour, 4) == kinds["noop"]["seed_cost_per_million_usd"]["fargate"]
    assert 3.0 == kinds["noop"]["dynamodb_write_units_per_job"]["total"]
