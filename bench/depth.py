"""``python -m bench.depth``: what one ReceiveMessage costs the emulator as the queue grows.

moto 5's SQS scans every queued message on each receive, and read the clock through a freshly built
``datetime`` for each of them, so the cost of a receive grew with the queue's depth (about 460 ms for a
10-message receive at a depth of 600, issue 21). This measures it side by side, in one run, on stock
moto server and on the fleet's embedded emulator (``fleet.local.emulator``), at a few depths. The
receives use a zero visibility timeout so the depth stays put; the figures are wall and server CPU
milliseconds per receive, averaged over ``--receives`` calls.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import boto3
import psutil
from botocore.config import Config

from bench.emulator import CREDENTIALS, HOST, REGION, free_port
from bench.processes import wait_for
from fleet.local.emulator import port_is_free, start_emulator, stop_emulator

DEPTHS: Final = (10, 100, 600, 2000)


@contextmanager
def _server(kind: str) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    if kind == "embedded":
        process = start_emulator(port, host=HOST)
    else:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: not port_is_free(port, HOST), 30, "stock moto server to listen")
    try:
        yield f"http://{HOST}:{port}", psutil.Process(process.pid)
    finally:
        stop_emulator(process)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def measure(kind: str, receives: int, depths: tuple[int, ...] = DEPTHS) -> dict[int, tuple[float, float]]:
    """Depth -> (wall ms, server CPU ms) per 10-message receive."""
    results = {}
    with _server(kind) as (endpoint, process):
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(retries={"mode": "standard"}),
        )
        url = sqs.create_queue(QueueName=f"depth-{kind}")["QueueUrl"]
        queued = 0
        for depth in depths:
            while queued < depth:
                batch = min(10, depth - queued)
                sqs.send_message_batch(
                    QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x" * 200} for i in range(batch)]
                )
                queued += batch
            cpu, started = _cpu(process), time.monotonic()
            for _ in range(receives):
                sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            wall = (time.monotonic() - started) / receives * 1000
            results[depth] = (round(wall, 2), round((_cpu(process) - cpu) / receives * 1000, 2))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.depth", description=__doc__.splitlines()[0])
    parser.add_argument("--receives", type=int, default=50)
    args = parser.parse_args(argv)
    stock, embedded = measure("stock", args.receives), measure("embedded", args.receives)
    print("| depth | stock moto: wall ms | server CPU ms | embedded emulator: wall ms | server CPU ms | wall ratio |")
    print("|---|---|---|---|---|---|")
    for depth in DEPTHS:
        (s_wall, s_cpu), (e_wall, e_cpu) = stock[depth], embedded[depth]
        print(f"| {depth} | {s_wall} | {s_cpu} | {e_wall} | {e_cpu} | {s_wall / e_wall:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
