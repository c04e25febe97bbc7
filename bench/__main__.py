"""``python -m bench [--quick]``: run every scenario one after another and write the results.

Scenarios run one at a time against one moto server: the machine has two cores, and a ratio is
only meaningful when both sides ran under the same conditions.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.emulator import Emulator
from bench.harness import ScenarioResult, run_scenario
from bench.peers.adapters import PEERS
from bench.peers.run import run_peer_scenario
from bench.plot import write_plot
from bench.report import markdown, write_json
from bench.summary import headline
from bench.workloads import FULL, QUICK, Scenario, scenarios

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _machine() -> str:
    return f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, {platform.system()}"


def run_all(plan_scenarios: list[Scenario], *, verbose: bool = True) -> list[ScenarioResult]:
    results = []
    with Emulator() as emulator:
        for scenario in plan_scenarios:
            started = time.monotonic()
            result = (
                run_peer_scenario(emulator, scenario)
                if scenario.pipeline in PEERS
                else run_scenario(emulator, scenario)
            )
            results.append(result)
            if verbose and result.error:
                print(f"[bench] {scenario.label} could not run: {result.error}", file=sys.stderr, flush=True)
            elif verbose:
                print(
                    f"[bench] {scenario.label}: {result.jobs_per_second:.1f} jobs/s, "
                    f"{result.requests_per_job:.2f} requests/job ({time.monotonic() - started:.0f}s)",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def peer_versions() -> dict[str, str]:
    """The installed version of every peer distribution, or why it is missing."""
    versions = {}
    for name in sorted({d for peer in PEERS.values() for d in peer.distributions}):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed (pip install -e '.[bench]')"
    return versions


def with_ledger(plan_scenarios: list[Scenario]) -> list[Scenario]:
    """``--ledger``: every fleet scenario runs with JOB_LEDGER_TABLE set (the peers have none), except the ledger-off
    twins of the headline, which are there to show what the ledger adds."""
    return [
        dataclasses.replace(s, ledger=True)
        if s.pipeline in ("fleet", "fleet-bg") and not s.label.endswith("-ledger-off")
        else s
        for s in plan_scenarios
    ]


def write_results(out: Path, *, quick: bool, results: list[ScenarioResult], ledger: bool = False) -> Path:
    """Write ``<date>.json``, ``<date>.md`` and ``<date>.png`` into ``out``; return the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = datetime.now(UTC).strftime("%Y-%m-%d") + ("-quick" if quick else "")
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "command": ".venv/bin/python -m bench" + (" --quick" if quick else "") + (" --ledger" if ledger else ""),
        "machine": _machine(),
        "peer_versions": peer_versions(),
        "plot": f"{stem}.png",
    }
    summary = headline(results)
    write_json(out / f"{stem}.json", meta, results, summary)
    write_plot(out / f"{stem}.png", results)
    summary_path = out / f"{stem}.md"
    summary_path.write_text(markdown(meta, results, summary))
    return summary_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer jobs and no 10,000-job leak check (a few minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="directory for <date>.json, .md and .png")
    parser.add_argument(
        "--ledger", action="store_true", help="run every fleet scenario with the job ledger table (JOB_LEDGER_TABLE)"
    )
    args = parser.parse_args(argv)
    plan = scenarios(QUICK if args.quick else FULL)
    results = run_all(with_ledger(plan) if args.ledger else plan)
    print(write_results(args.out, quick=args.quick, results=results, ledger=args.ledger).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
