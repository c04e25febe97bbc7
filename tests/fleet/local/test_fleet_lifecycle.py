"""The local supervisor's lifecycle: a taken port, kill -9, SIGTERM, and its state folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from common.names import FleetNames
from fleet.cli.ledger import Ledger
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Supervisor:
    process: subprocess.Popen[str]
    console: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def ready(self) -> dict[str, Any]:
        def announced() -> dict[str, Any] | None:
            for line in list(self.console):
                if line.startswith('{"event": "fleet.ready"'):
                    return dict(json.loads(line))
            assert self.process.poll() is None, "".join(self.console)
            return None

        return wait_until(announced, timeout=60, what="fleet.ready")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start ``python -m fleet.local.fleet`` with TMPDIR in tmp_path; kill whatever is left at the end."""
    started: list[Supervisor] = []

    def run(port: int, *args: str, quiet: bool = True, grace: str | None = "10") -> Supervisor:
        env = {**os.environ, "TMPDIR": str(tmp_path), "FLEET_ENVIRONMENT": "life"}
        env.pop("RECEIVE_WAIT_SECONDS", None)
        env.pop("SHUTDOWN_GRACE_SECONDS", None)
        if grace is not None:
            env["SHUTDOWN_GRACE_SECONDS"] = grace
        process = subprocess.Popen(
            [sys.executable, "-m", "fleet.local.fleet", "--port", str(port), *(["--quiet"] if quiet else []), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        supervisor = Supervisor(process)
        pump = threading.Thread(
            target=lambda: supervisor.console.extend(iter(process.stdout.readline, "")), daemon=True
        )  # type: ignore[union-attr]
        pump.start()
        supervisor.pump = pump
        started.append(supervisor)
        return supervisor

    yield run
    for supervisor in started:
        if supervisor.process.poll() is None:
            supervisor.process.kill()
            supervisor.process.wait()
        if supervisor.pump is not None:
            supervisor.pump.join(timeout=10)
        supervisor.process.stdout.close()  # type: ignore[union-attr]


def test_a_start_on_a_taken_port_fails_at_once_with_one_line(start: Any, tmp_path: Path) -> None:
    """A taken port: non-zero exit, one line naming the port and FLEET_LOCAL_PORT, no state folder left."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        supervisor = start(port)
        code = supervisor.process.wait(timeout=30)
    wait_until(lambda: supervisor.console, timeout=5, what="output")

    assert 1 == code
    assert [f"[fleet] error: port {port} is in use: stop what holds it or set FLEET_LOCAL_PORT to a free port\n"] == [
        line for line in supervisor.console if line.strip()
    ]
    assert [] == list(tmp_path.glob("fleet-local-*"))


def test_a_bad_schedules_declaration_fails_at_once_naming_the_schedule(
    start: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schedule main_job would quarantine stops the start before anything runs, with the file and the reason."""
    declaration = tmp_path / "schedules.auto.tfvars.json"
    declaration.write_text('{"schedules": {"nightly": {"expression": "rate(1 day)", "trigger": {"trigger": 7}}}}')
    monkeypatch.setenv("FLEET_SCHEDULES_FILE", str(declaration))

    supervisor = start(_free_port())
    code = supervisor.process.wait(timeout=30)
    wait_until(lambda: supervisor.console, timeout=5, what="output")

    assert 1 == code
    assert [
        f"[fleet] error: {declaration}: schedule 'nightly': trigger field 'trigger' must be a string, got number\n"
    ] == [line for line in supervisor.console if line.strip()]
    assert [] == list(tmp_path.glob("fleet-local-*"))


def test_children_die_within_2s_of_a_kill_9_of_the_supervisor(start: Any) -> None:
    """After SIGKILL of the supervisor, the emulator and both workers are gone within 2 s."""
    supervisor = start(_free_port())
    supervisor.ready()
    children = supervisor.children()
    assert 3 <= len(children)

    supervisor.process.kill()
    supervisor.process.wait()

    wait_until(lambda: not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE],
               timeout=2, what="no child alive")  # fmt: skip


def _drained(console: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in list(console):
        _, _, text = line.partition("] ")
        if text.startswith("{") and '"worker.drained"' in text:
            found.append(json.loads(text))
    return found


def test_sigterm_stops_everything_within_3s_losing_no_message(start: Any, tmp_path: Path) -> None:
    """SIGTERM mid-traffic: exit 0, no child left, no state folder, every worker settled or released all it held."""
    supervisor = start(_free_port(), quiet=False)
    ready = supervisor.ready()
    children = supervisor.children()
    sqs = boto3.client("sqs", endpoint_url=ready["endpoint"], region_name="us-east-1")  # the emulator takes any key
    for batch in range(3):
        sqs.send_message_batch(
            QueueUrl=ready["queues"]["trigger"],
            Entries=[{"Id": str(i), "MessageBody": json.dumps({"trigger": f"stop-{batch}-{i}"})} for i in range(10)],
        )
    wait_until(lambda: any(line.startswith("[background-job-1] {") and "job.succeeded" in line
                           for line in list(supervisor.console)), timeout=30, what="a job done")  # fmt: skip

    supervisor.process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    # A deadline, not a benchmark: the old 20 s long poll misses it; measured ~1.5 s, slack for shared cores.
    code = supervisor.process.wait(timeout=10)
    elapsed = time.monotonic() - began
    print(f"stopped {elapsed:.2f}s after SIGTERM")  # noqa: T201 - the figure the report quotes

    assert 0 == code, "".join(supervisor.console[-30:])
    assert [] == [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert [] == list(tmp_path.glob("fleet-local-*"))
    drained = _drained(supervisor.console)
    assert 2 == len(drained), "".join(supervisor.console[-15:])
    assert [0, 0] == [d["still_owned"] for d in drained]


def _send_long_job(ready: dict[str, Any], seconds: int) -> tuple[Ledger, str]:
    """A diagnostic-sleep job of ``seconds``; returns the ledger and the job's ID once it is running."""
    endpoint = ready["endpoint"]
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    sqs.send_message(
        QueueUrl=ready["queues"]["trigger"],
        MessageBody=json.dumps({"trigger": "long", "jobType": "diagnostic-sleep", "data": {"seconds": seconds}}),
    )
    table = FleetNames.for_deployment("message-driven-microservices", "life").job_ledger_table
    ledger = Ledger(boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1"), table)

    def running_job() -> str | None:
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        items = dynamodb.scan(TableName=table).get("Items", [])
        # .get: a scan may meet an item moto is still writing (the emulator serialises writes, not reads)
        running = [item["jobId"]["S"] for item in items if item.get("status", {}).get("S") == "running"]
        return running[0] if running else None

    return ledger, wait_until(running_job, timeout=30, what="the long job to run")


def _worker_events(console: list[str], label: str, job_id: str | None = None) -> list[str]:
    """The events of one worker's JSON lines on the console, in order (optionally only one job's)."""
    events = []
    for line in list(console):
        if line.startswith(f"[{label}] {{"):
            event = json.loads(line.partition("] ")[2])
            if job_id is None or event.get("job_id") == job_id:
                events.append(str(event.get("event")))
    return events


def test_ctrl_c_during_a_60s_job_stops_everything_within_5s_releasing_the_job(start: Any) -> None:
    """Ctrl-C with a job running: the job's message is released before its worker stops, all gone in 5 s."""
    supervisor = start(_free_port(), quiet=False, grace=None)  # the local defaults, as a newcomer runs it
    _, job_id = _send_long_job(supervisor.ready(), seconds=60)
    children = supervisor.children()

    supervisor.process.send_signal(signal.SIGINT)
    # A deadline, not a benchmark: the issue's figure. Before: 52 s (grace 25 s + a 20 s wait + 5 s).
    code = supervisor.process.wait(timeout=5)
    wait_until(lambda: supervisor.pump is not None and not supervisor.pump.is_alive(), timeout=5, what="EOF")

    console = "".join(supervisor.console)
    assert 0 == code, console[-3000:]
    assert [] == [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert ["message.released"] == _worker_events(supervisor.console, "background-job-1", job_id)
    events = _worker_events(supervisor.console, "background-job-1")
    assert events.index("message.released") < events.index("worker.stopped")
    assert "Press Ctrl-C again to force the stop" in console
    assert "queues, DLQs, job ledger and logs are gone" in console


def test_a_job_released_by_a_stopped_background_worker_runs_on_another(start: Any) -> None:
    """As when ECS stops one task: its running job is released at the end of the grace and run again elsewhere."""
    supervisor = start(_free_port(), "--background-workers", "2", quiet=False, grace="1")
    ledger, job_id = _send_long_job(supervisor.ready(), seconds=60)
    first = ledger.get(job_id)
    assert first is not None
    first_pid = int(first.worker_id.rsplit("/", 1)[1])

    os.kill(first_pid, signal.SIGTERM)

    def rerun() -> Any:
        job = ledger.get(job_id)
        return job if job is not None and job.status == "running" and job.worker_id != first.worker_id else None

    again = wait_until(rerun, timeout=30, what="the released job to run on another worker")
    released_by = wait_until(
        lambda: [
            n for n in (1, 2) if "message.released" in _worker_events(supervisor.console, f"background-job-{n}", job_id)
        ],
        timeout=10,
        what="the stopped worker's message.released line",
    )
    assert 2 == again.attempts
    assert 1 == len(released_by)


def test_the_stop_line_counts_the_queued_messages_it_throws_away(start: Any) -> None:
    """No background worker, three triggers sent: the stop says 3 background jobs were still queued."""
    supervisor = start(_free_port(), "--background-workers", "0")
    ready = supervisor.ready()
    sqs = boto3.client("sqs", endpoint_url=ready["endpoint"], region_name="us-east-1")
    for number in range(3):
        sqs.send_message(QueueUrl=ready["queues"]["trigger"], MessageBody=json.dumps({"trigger": f"t{number}"}))

    def queued() -> bool:
        found = sqs.get_queue_attributes(
            QueueUrl=ready["queues"]["background"], AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return found["ApproximateNumberOfMessages"] == "3"

    wait_until(queued, timeout=30, what="three background jobs queued")
    supervisor.process.send_signal(signal.SIGINT)
    assert 0 == supervisor.process.wait(timeout=30)
    wait_until(lambda: supervisor.pump is not None and not supervisor.pump.is_alive(), timeout=5, what="EOF")

    assert (
        "(with 0 triggers, 3 background jobs, 0 trigger DLQ messages, 0 background DLQ messages still queued)"
        in "".join(supervisor.console)
    )
