"""``python -m bench.peers``: a few peer-table rows side by side, without the rest of ``python -m bench``.

For checking one figure of the peer table, such as the fleet against sqs-workers on one job, in a few
minutes: the same scenarios ``python -m bench`` runs (:func:`bench.peers.run.run_peer_scenario`), on one
emulator, interleaved round by round so every pipeline sees the same machine. Nothing is written to
``bench/results``; the rows go to stdout.
"""

from __future__ import annotations

import argparse
import sys

from bench.emulator import Emulator
from bench.harness import ScenarioResult
from bench.peers.adapters import PEERS
from bench.peers.run import run_peer_scenario
from bench.workloads import DEFAULT_CONCURRENCY, IO_200MS, NOOP, Scenario, peer_depth

_WORKLOADS = {NOOP.name: NOOP, IO_200MS.name: IO_200MS}


def _row(result: ScenarioResult) -> str:
    cpu_ms = sum(result.cpu_seconds_per_job.values()) * 1000
    return (
        f"| {result.pipeline} | {result.jobs_per_second:.1f} | {cpu_ms:.2f} | "
        f"{result.emulator_cpu_seconds_per_job * 1000:.2f} | {result.requests_per_job:.3f} | "
        f"{result.lost} | {result.run_twice} | {result.error or ''} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--pipelines", default="fleet-bg,sqs-workers", help=f"comma-separated, of {', '.join(PEERS)}")
    parser.add_argument("--workload", choices=sorted(_WORKLOADS), default=NOOP.name)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    pipelines = args.pipelines.split(",")
    unknown = sorted(set(pipelines) - set(PEERS))
    if unknown:
        parser.error(f"unknown pipelines: {', '.join(unknown)}")
    workload = _WORKLOADS[args.workload]
    print("| pipeline | jobs/s | CPU ms/job | emulator CPU ms/job | requests/job | lost | run twice | error |")
    print("|---|---|---|---|---|---|---|---|")
    with Emulator() as emulator:
        for _ in range(args.rounds):
            for pipeline in pipelines:
                scenario = Scenario(
                    f"{pipeline}-{workload.name}",
                    pipeline,
                    workload,
                    args.jobs,
                    queue_depth=peer_depth(DEFAULT_CONCURRENCY),
                )
                print(_row(run_peer_scenario(emulator, scenario)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
