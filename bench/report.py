"""Writes a run's results: ``bench/results/<date>.json``, a Markdown summary next to it, and the plot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

from bench import cost_summary
from bench.harness import ScenarioResult
from bench.peers.adapters import PEERS

#: The by-operation table: each pipeline saturated, the batch window off, and light load.
BY_OPERATION_SCENARIOS: Final = frozenset(
    {
        "fleet-noop",
        "fleet-noop-no-window",
        "fleet-io",
        "fleet-io-no-window",
        "fleet-noop-light",
        "naive-noop",
        "ceiling-noop",
    }
)


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}f}"


def write_json(path: Path, meta: dict[str, Any], results: Sequence[ScenarioResult], summary: dict[str, Any]) -> None:
    document = {"meta": meta, "summary": summary, "scenarios": [asdict(result) for result in results]}
    path.write_text(json.dumps(document, indent=2, allow_nan=True) + "\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _scenario_rows(results: Sequence[ScenarioResult]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.label.startswith(("scaling-", "leak-")) or r.pipeline in PEERS:
            continue
        load = f"{r.rate:g}/s" if r.rate else "saturated"
        rows.append(
            [
                r.label,
                load,
                _fmt(r.jobs_per_second),
                _fmt(r.requests_per_job, 2),
                _fmt(r.latency_ms["started"]["p50"], 0)
                + " / "
                + _fmt(r.latency_ms["started"]["p95"], 0)
                + " / "
                + _fmt(r.latency_ms["started"]["p99"], 0),
                _fmt(r.latency_ms["finished"]["p50"], 0)
                + " / "
                + _fmt(r.latency_ms["finished"]["p95"], 0)
                + " / "
                + _fmt(r.latency_ms["finished"]["p99"], 0),
                " + ".join(f"{1000 * cpu:.2f}" for cpu in r.cpu_seconds_per_job.values()),
                " / ".join(_fmt(mb, 0) for mb in r.peak_rss_mb.values()),
            ]
        )
    return rows


def _operations(results: Sequence[ScenarioResult]) -> list[str]:
    chosen = [r for r in results if r.label in BY_OPERATION_SCENARIOS]
    names = sorted({name for r in chosen for name in r.requests_by_operation})
    rows = [
        [r.label, *(_fmt(r.requests_by_operation.get(name, 0.0), 3) for name in names), _fmt(r.requests_per_job, 3)]
        for r in chosen
    ]
    return _table(["scenario", *names, "total"], rows)


def _scaling(results: Sequence[ScenarioResult], summary: dict[str, Any]) -> list[str]:
    limits = {row["label"]: row for row in summary.get("scaling", [])}
    rows = [
        [
            r.workload,
            str(r.concurrency),
            _fmt(r.jobs_per_second),
            f"{_fmt(limits[r.label]['limit_jobs_per_second'])} ({limits[r.label]['limit']})",
            _fmt(limits[r.label]["share_of_limit"], 2),
            _fmt(r.requests_per_job, 2),
        ]
        for r in results
        if r.label in limits
    ]
    return _table(["job", "WORKER_CONCURRENCY", "jobs/s", "limit jobs/s", "share of limit", "requests/job"], rows)


def _peers(summary: dict[str, Any], versions: dict[str, str]) -> list[str]:
    rows = [
        [
            row["peer"],
            row["job"],
            _fmt(row["jobs_per_second"]),
            f"{_fmt(row['limit_jobs_per_second'])} ({row['limit']})",
            _fmt(row["share_of_limit"], 2),
            _fmt(row["sqs_requests_per_job"], 3),
            _fmt(row["aws_requests_per_job"], 3),
            _fmt(row["cpu_ms_per_job"], 2),
            _fmt(row["peak_rss_mb"], 0),
            str(row["lost"]),
            str(row["run_twice"]),
            str(row["undeleted"]),
        ]
        for row in summary.get("peers", [])
    ]
    failures = [
        f"- **{row['peer']} ({row['job']}) could not run**: {row['error']}"
        for row in summary.get("peers", [])
        if row["error"]
    ]
    header = [
        "peer",
        "job",
        "jobs/s",
        "limit jobs/s",
        "share of limit",
        "SQS req/job",
        "AWS req/job",
        "CPU ms/job",
        "peak RSS MB",
        "lost",
        "run twice",
        "left undeleted",
    ]
    installed = ", ".join(f"{name} {version}" for name, version in versions.items())
    return [
        f"Installed: {installed}. Each peer consumes a queue the bench fills, at concurrency 10; `fleet-bg` is the",
        "fleet's background worker alone on the same kind of queue. AWS requests include the fleet's per-job",
        "CreateLogStream and PutLogEvents, which the peers do not make. CPU and peak RSS cover every process of",
        "the peer (RSS summed over processes). Lost and run twice are counted from each job's side effect.",
        "",
        *_table(header, rows),
        *(["", *failures] if failures else []),
    ]


def markdown(meta: dict[str, Any], results: Sequence[ScenarioResult], summary: dict[str, Any]) -> str:
    """A summary a reviewer can read without the JSON; every ratio is from this one run."""
    cost = summary["cost_per_million_jobs_usd"]
    lines = [
        f"# Benchmark run {meta['date']} ({meta['mode']})",
        "",
        f"Command: `{meta['command']}`. Machine: {meta['machine']}. All figures are from one run against one",
        "moto server; compare ratios, not absolute numbers.",
        "",
        "## Headline",
        "",
        f"- SQS + Logs requests per job (target <= {summary['requests_target']}): "
        + ", ".join(f"{label} {value:.2f}" for label, value in summary["sqs_logs_requests_per_job"].items()),
        "- All AWS requests per job (DynamoDB's are billed by unit, not by request): "
        + ", ".join(f"{label} {value:.2f}" for label, value in summary["requests_per_job"].items()),
        f"- No-op job: {_fmt(summary['noop_share_of_ceiling'], 2)} of the emulator's ceiling "
        f"(target >= {summary['noop_share_of_ceiling_target']}), {_fmt(summary['noop_vs_naive'])}x the naive baseline",
        f"- 200 ms I/O job: {_fmt(summary['io_vs_naive'])}x the naive baseline "
        f"(target >= {summary['io_vs_naive_target']})",
        f"- Cost per million jobs at the defaults (USD, prices {summary['prices']['as_of']}; DynamoDB"
        f" {summary['prices']['dynamodb_as_of']}): no-op {cost['noop']['total']:.2f}, "
        f"200 ms I/O {cost['io-200ms']['total']:.2f} (CPU-bound Fargate sizing; breakdown below and in"
        " docs/performance.md)",
    ]
    for kind, window in summary.get("batch_window", {}).items():
        lines.append(
            f"- Batch window, {kind}: {window['requests_per_job']:.2f} requests/job against "
            f"{window['requests_per_job_without']:.2f} with BATCH_WINDOW_SECONDS=0, at "
            f"{_fmt(window['throughput_vs_without'], 2)}x its throughput"
        )
    for kind, ledger in summary.get("ledger", {}).items():
        lines.append(
            f"- Job ledger, {kind}: {ledger['requests_per_job']:.2f} requests/job with JOB_LEDGER_TABLE against "
            f"{ledger['requests_per_job_without']:.2f} without ({ledger['dynamodb_requests_per_job']:.2f} DynamoDB), "
            f"at {_fmt(ledger['throughput_vs_without'], 2)}x its throughput"
        )
    if "io_share_of_limit" in summary:
        lines.append(
            f"- 200 ms I/O job{' with the ledger on' if summary.get('io_ledger') else ''}:"
            f" {_fmt(summary['io_share_of_limit'], 2)} of the 50 jobs/s limit (10 slots; target >="
            f" {summary.get('io_share_of_limit_target')}), ledger off"
            f" {_fmt(summary.get('io_share_of_limit_ledger_off', math.nan), 2)}"
        )
    leak = summary.get("leak_check")
    if leak:
        lines.append(
            f"- Leak check over {leak['jobs']} jobs: RSS {leak['rss_mb_early']} -> {leak['rss_mb_late']} MB, "
            f"threads {leak['threads_early']} -> {leak['threads_late']}"
        )
    lines += [
        "",
        "## Cost at the defaults",
        "",
        *cost_summary.markdown_lines(summary["cost_at_defaults"], summary["prices"]["dynamodb_as_of"]),
        "",
        "## Scenarios",
        "",
        "CPU is ms per job (trigger stage + job stage); RSS is peak MB per process; latency is ms, p50 / p95 / p99,",
        "from the trigger's SentTimestamp to the job's start and finish.",
        "",
        *_table(
            ["scenario", "load", "jobs/s", "req/job", "sent->started", "sent->finished", "CPU ms/job", "peak RSS MB"],
            _scenario_rows(results),
        ),
        "",
        "## Requests per job by operation",
        "",
        *_operations(results),
        "",
        "## Scaling with WORKER_CONCURRENCY",
        "",
        *_scaling(results, summary),
        "",
        "## Side by side with the peers",
        "",
        *_peers(summary, meta.get("peer_versions", {})),
        "",
        f"![throughput, scaling and leak check]({meta['plot']})",
        "",
    ]
    return "\n".join(lines)
