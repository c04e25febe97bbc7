"""The run's plot: throughput side by side, scaling with concurrency, and the leak check if it ran."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import matplotlib as mpl

mpl.use("Agg")  # files only: the benchmark runs headless
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.harness import ScenarioResult
from bench.summary import limit
from bench.workloads import PEER_PIPELINES, SCALING_CONCURRENCY

#: Bars per job kind: (tick label, scenario label pattern, colour); a bar is drawn only if it ran.
BARS: Final = (
    ("naive", "naive-{}", "#bbbbbb"),
    ("fleet", "fleet-{}", "#1f77b4"),
    ("fleet,\nno window", "fleet-{}-no-window", "#9ecae1"),
    ("ceiling", "ceiling-{}", "#ff7f0e"),
)


def _throughput(axes: Axes, by: dict[str, ScenarioResult]) -> None:
    ticks: list[tuple[int, str]] = []
    for workload in ("noop", "io"):
        for name, pattern, colour in BARS:
            result = by.get(pattern.format(workload))
            if result is None:
                continue
            position = len(ticks) + (1 if workload == "io" else 0)
            bars = axes.bar([position], [result.jobs_per_second], color=colour)
            axes.bar_label(bars, fmt="%.0f", fontsize=7)
            ticks.append((position, name))
    axes.set_xticks([position for position, _ in ticks], [name for _, name in ticks], fontsize=6)
    axes.margins(y=0.15)
    axes.set_title("jobs/s: no-op (left), 200 ms I/O (right)", fontsize=9)


def _scaling(axes: Axes, results: Sequence[ScenarioResult]) -> None:
    for workload in ("io-200ms", "noop"):
        points = sorted(
            (r.concurrency, r.jobs_per_second)
            for r in results
            if r.label.startswith("scaling-") and r.workload == workload
        )
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=workload)
    axes.set_xscale("log", base=2)
    axes.set_xticks(SCALING_CONCURRENCY, [str(n) for n in SCALING_CONCURRENCY])
    axes.set_xlabel("WORKER_CONCURRENCY", fontsize=8)
    axes.set_title("jobs/s against concurrency", fontsize=9)
    if axes.get_lines():
        axes.legend(fontsize=7)


def _against_limit(axes: Axes, by: dict[str, ScenarioResult]) -> None:
    """Share of the limit, fleet and peers side by side: 10 slots / 200 ms for the I/O job, a ceiling for the no-op."""
    names = ["fleet", *PEER_PIPELINES]
    for offset, (workload, colour) in enumerate((("noop", "#1f77b4"), ("io-200ms", "#ff7f0e"))):
        shares = []
        for name in names:
            result = by.get(f"{name}-{workload}") or by.get(f"{name}-{workload.replace('-200ms', '')}")
            bound = limit(result, by)[0] if result else float("nan")
            shares.append(result.jobs_per_second / bound if result and bound else float("nan"))
        positions = [n + 0.4 * offset for n in range(len(names))]
        bars = axes.bar(positions, shares, width=0.4, color=colour, label=workload)
        axes.bar_label(bars, fmt="%.2f", fontsize=6)
    axes.axhline(1.0, color="#888888", linewidth=0.8, linestyle="--")
    axes.set_xticks([n + 0.2 for n in range(len(names))], names, fontsize=6, rotation=20)
    axes.set_title("share of the limit (1.0 = limit), concurrency 10", fontsize=9)
    axes.legend(fontsize=7)


def _leak(axes: Axes, result: ScenarioResult) -> None:
    jobs = [sample.jobs for sample in result.samples]
    axes.plot(jobs, [sample.rss_mb for sample in result.samples], color="#1f77b4", label="RSS MB")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("jobs done", fontsize=8)
    twin = axes.twinx()
    twin.plot(jobs, [sample.threads for sample in result.samples], color="#d62728", label="threads")
    twin.set_ylim(bottom=0)
    axes.set_title(f"background_job over {result.jobs} jobs: RSS (blue), threads (red)", fontsize=9)


def write_plot(path: Path, results: Sequence[ScenarioResult]) -> None:
    by = {result.label: result for result in results}
    leak = by.get("leak-noop")
    count = 4 if leak else 3
    figure, panels = plt.subplots(1, count, figsize=(4 * count, 3.4), dpi=80)
    _throughput(panels[0], {label.replace("-io-200ms", "-io"): r for label, r in by.items()})
    _scaling(panels[1], results)
    _against_limit(panels[2], by)
    if leak:
        _leak(panels[3], leak)
    for axes in panels:
        axes.tick_params(labelsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
