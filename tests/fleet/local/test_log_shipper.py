"""The local log shipper: each worker's lines echoed whole to the console and stored in its own stream."""

from __future__ import annotations

import io
import threading

import boto3
from moto import mock_aws

from fleet.local.log_shipper import LogShipper, quiet_summary

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


def test_quiet_hides_routine_json_and_metric_lines() -> None:
    """--quiet drops EMF metric lines and routine events: they still reach the log group, not the terminal."""
    metric = '{"_aws": {"Timestamp": 1}, "JobsSucceeded": 1}'
    routine = '{"event": "job.succeeded", "level": "info", "job_id": "01J"}'

    assert [None, None] == [quiet_summary(metric), quiet_summary(routine)]


def test_quiet_keeps_one_short_line_per_lifecycle_event_warning_and_error() -> None:
    """A worker's start, stop, released messages and warnings stay visible as one short line each."""
    lines = [
        '{"event": "worker.stopped", "level": "info", "reason": "received SIGTERM", "service": "main-job"}',
        '{"event": "message.released", "level": "info", "job_id": "01J", "message_id": "m-1"}',
        '{"event": "job.failed", "level": "warning", "job_id": "01K", "error": "boom", "service": "bg"}',
        "Traceback (most recent call last):",
    ]

    assert [
        "info worker.stopped reason=received SIGTERM",
        "info message.released job_id=01J",
        "warning job.failed job_id=01K error=boom",
        "Traceback (most recent call last):",
    ] == [quiet_summary(line) for line in lines]


def test_a_quiet_shipper_still_stores_every_line() -> None:
    """Hiding lines from the terminal never keeps them from the worker's stream."""
    with mock_aws():
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName=GROUP)
        console = _Recorder()
        shipper = LogShipper(logs, console, quiet=True)
        lines = ['{"_aws": {}, "M": 1}', '{"event": "worker.started", "level": "info"}']
        shipper.follow(io.StringIO("".join(f"{line}\n" for line in lines)), group=GROUP, stream="s", label="w").join(10)
        shipper.stop()
        stored = [e["message"] for e in logs.get_log_events(logGroupName=GROUP, logStreamName="s")["events"]]

    assert lines == stored
    assert ["[w] info worker.started\n"] == console.writes
