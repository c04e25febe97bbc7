"""The local log shipper: each worker's lines echoed whole to the console and stored in its own stream."""

from __future__ import annotations

import io
import threading

import boto3
from moto import mock_aws

from fleet.local.log_shipper import LogShipper

GROUP = "/ecs/local/main-job"


class _Recorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


def _ship(lines_per_worker: int) -> tuple[_Recorder, dict[str, list[str]]]:
    """Two workers' output through one shipper, stopped; the console writes and each stream's messages."""
    with mock_aws():
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName=GROUP)
        console = _Recorder()
        shipper = LogShipper(logs, console)
        pipes = [io.StringIO("".join(f'{{"n": {i}}}\n' for i in range(lines_per_worker))) for _ in range(2)]
        pumps = [shipper.follow(pipe, group=GROUP, stream=f"s{n}", label=f"w{n}") for n, pipe in enumerate(pipes)]
        for pump in pumps:
            pump.join(timeout=10)
        shipper.stop()
        stored = {
            stream: [e["message"] for e in logs.get_log_events(logGroupName=GROUP, logStreamName=stream)["events"]]
            for stream in ("s0", "s1")
        }
    return console, stored


def test_echo_writes_each_line_whole_so_workers_never_share_a_console_line() -> None:
    """Every write to the console is one complete line, whichever worker it came from."""
    console, _ = _ship(200)

    assert 400 == len(console.writes)
    assert all(w.endswith("\n") and w.count("\n") == 1 and w.startswith("[w") for w in console.writes)
    assert not any(thread.name.startswith("pump-") and thread.is_alive() for thread in threading.enumerate())


def test_each_worker_s_lines_reach_its_own_stream_in_order_by_the_time_stop_returns() -> None:
    """stop() ships what is buffered: every line is in its worker's stream, none in the other's."""
    _, stored = _ship(50)

    expected = [f'{{"n": {i}}}' for i in range(50)]
    assert {"s0": expected, "s1": expected} == stored
