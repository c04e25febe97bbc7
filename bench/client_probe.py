"""What the client-CPU probes share (``bench.logs_client``, ``bench.ledger_client``).

Each probe times a few callers making the same requests against one embedded emulator. The callers
run interleaved, round by round, so a change in the machine's load shifts them all alike; the median
of the rounds is reported, and a table gives each caller's figure against the probe's floor.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import boto3

from bench.emulator import CREDENTIALS, HOST, REGION, free_port
from fleet.local.emulator import start_emulator, stop_emulator

#: A probe's measurement: (jobs per caller per round, rounds) -> each caller's median CPU ms per job.
Measure = Callable[[int, int], Mapping[str, float]]


@contextmanager
def probe_emulator() -> Iterator[tuple[str, boto3.session.Session]]:
    """A fresh embedded emulator on a free port: its endpoint, and a session with its credentials."""
    port = free_port()
    process = start_emulator(port, host=HOST)
    session = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    try:
        yield f"http://{HOST}:{port}", session
    finally:
        stop_emulator(process)


def interleaved_medians(callers: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Each caller's median over ``rounds``, one sample of every caller per round, in order."""
    samples: dict[str, list[float]] = {name: [] for name in callers}
    for _ in range(rounds):
        for name, sample in callers.items():
            samples[name].append(sample())
    return {name: statistics.median(values) for name, values in samples.items()}


def print_against(figures: Mapping[str, float], floor: str, figure_name: str) -> None:
    """A Markdown table of ``figures``, each beside its ratio to the ``floor`` caller's."""
    print(f"| caller | {figure_name} | vs {floor} |")
    print("|---|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value:.2f} | {value / figures[floor]:.2f}x |")


def probe_main(
    argv: Sequence[str] | None, *, prog: str, description: str, measure: Measure, floor: str, jobs: int
) -> int:
    """A probe's command line: ``--jobs`` and ``--rounds``, then its callers' table against ``floor``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--jobs", type=int, default=jobs, help="jobs per caller per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    args = parser.parse_args(argv)
    print_against(measure(args.jobs, args.rounds), floor, "client CPU ms per job (2 requests)")
    return 0
