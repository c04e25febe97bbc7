"""The benchmark's pieces run end to end on a tiny plan: harness, baseline, ceiling, report and plot.

Nothing here is timed: the assertions are on what was counted and written, which is deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import run_all, write_results
from bench.summary import SQS_API
from bench.workloads import IO_200MS, NO_BATCH_WINDOW, NOOP, Scenario, peer_depth

#: Short long polls so each tiny scenario stops within a second of its last job.
FAST_STOP = {"RECEIVE_WAIT_SECONDS": "1"}


def _tiny_plan() -> list[Scenario]:
    return [
        Scenario("fleet-noop", "fleet", NOOP, 20, concurrency=4, env=FAST_STOP, ledger=True),
        Scenario("ceiling-noop", "ceiling", NOOP, 20, concurrency=4, env=FAST_STOP),
        Scenario("naive-noop", "naive", NOOP, 10, concurrency=1, env=FAST_STOP),
        Scenario("fleet-io", "fleet", IO_200MS, 10, concurrency=4, env=FAST_STOP),
        Scenario("naive-io", "naive", IO_200MS, 3, concurrency=1, env=FAST_STOP),
        Scenario("fleet-io-no-window", "fleet", IO_200MS, 10, concurrency=4, env={**FAST_STOP, **NO_BATCH_WINDOW}),
        Scenario("fleet-noop-ledger-off", "fleet", NOOP, 20, concurrency=4, env=FAST_STOP),
        Scenario("peer-ceiling-noop", "peer-ceiling", NOOP, 20, concurrency=4, queue_depth=peer_depth(4)),
        Scenario("fleet-bg-noop", "fleet-bg", NOOP, 20, concurrency=4, env=FAST_STOP, queue_depth=peer_depth(4)),
        Scenario("sqs-workers-io-200ms", "sqs-workers", IO_200MS, 12, concurrency=4, queue_depth=peer_depth(4)),
    ]


def test_a_tiny_run_counts_every_pipeline_and_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    """Each pipeline's log calls are counted exactly, and the run's three files are written."""
    results = {result.label: result for result in run_all(_tiny_plan(), verbose=False)}

    summary_path = write_results(tmp_path, quick=True, results=list(results.values()))

    assert {"CreateLogStream": 1.0, "PutLogEvents": 1.0} == {
        name: count for name, count in results["fleet-noop"].requests_by_operation.items() if "Log" in name
    }
    assert {"CreateLogStream": 1.0, "PutLogEvents": 4.0} == {
        name: count for name, count in results["naive-noop"].requests_by_operation.items() if "Log" in name
    }
    assert 1.0 == results["ceiling-noop"].requests_by_operation["PutLogEvents"]
    assert all(result.jobs_per_second > 0 for result in results.values())
    document = json.loads(summary_path.with_suffix(".json").read_text())
    assert {"requests_per_job", "io_vs_naive", "noop_share_of_ceiling", "cost_per_million_jobs_usd"} <= set(
        document["summary"]
    )
    assert {"io-200ms"} == set(document["summary"]["batch_window"])
    assert "## Headline" in summary_path.read_text()
    assert "## Side by side with the peers" in summary_path.read_text()
    peers = {row["peer"]: row for row in document["summary"]["peers"]}
    # Run twice is measured, not asserted: moto's receives are not atomic across processes (issue 21).
    assert (0, None) == (peers["sqs-workers"]["lost"], peers["sqs-workers"]["error"])
    assert "run_twice" in peers["sqs-workers"]
    assert peers["sqs-workers"]["sqs_requests_per_job"] > 0
    assert set(results["sqs-workers-io-200ms"].requests_by_operation) <= SQS_API  # no log calls: only the fleet
    assert 0 == peers["fleet-bg"]["lost"]
    assert {"CreateLogStream": 1.0, "PutLogEvents": 1.0} == {
        name: count for name, count in results["fleet-bg-noop"].requests_by_operation.items() if "Log" in name
    }
    assert {"noop"} == set(document["summary"]["ledger"])
    at_defaults = document["summary"]["cost_at_defaults"]["kinds"]["noop"]
    assert at_defaults["dynamodb_write_units_per_job"]["total"] >= 3  # queued, claim, outcome: a unit each at least
    assert at_defaults["seed_cost_per_million_usd"]["total"] > 0
    assert "## Cost at the defaults" in summary_path.read_text()
    assert "sqs-workers" in document["meta"]["peer_versions"]
    assert summary_path.with_suffix(".png").stat().st_size > 0
