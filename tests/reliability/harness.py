"""Drives the real local fleet (moto server, the AWS proxy, worker processes) for the reliability scenarios.

Everything observed here is observed from outside, the way an operator would: queue attributes, the
service log groups the fleet ships worker stdout to (one stream per process, as awslogs does), the
per-job streams, and the proxy's call and fault counts. Worker stdout is read back from the log groups,
not from the fleet's echo, so that lines of different processes can never interleave.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from common.job_log.log import job_stream_name
from common.names import FleetNames
from common.settings import (
    ENV_BACKGROUND_DLQ_URL,
    ENV_BACKGROUND_QUEUE_URL,
    ENV_HEARTBEAT_FILE,
    ENV_JOB_LOG_GROUP,
    ENV_TRIGGER_DLQ_URL,
    ENV_TRIGGER_QUEUE_URL,
)
from tests.waiting import wait_until

PROJECT = "reliability"
REGION = "us-east-1"
EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
_STARTED = re.compile(r"\[fleet\] started (?P<label>[\w-]+) \(pid (?P<pid>\d+)\)")
_EXITED = re.compile(r"\[fleet\] (?P<label>[\w-]+) exited with status (?P<code>-?\d+)")
#: Worker settings that keep scenarios quick: short polls, short visibility, fast retries.
QUICK_SETTINGS = {
    "RECEIVE_WAIT_SECONDS": "1",
    "VISIBILITY_TIMEOUT_SECONDS": "10",
    "SHUTDOWN_GRACE_SECONDS": "10",
    "MAX_RECEIVE_COUNT": "5",
    "RETRY_BASE_SECONDS": "1",
    "RETRY_MAX_SECONDS": "30",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _size(body: str) -> int:
    return len(body.encode())


def worker_lines(messages: Iterable[str]) -> list[dict[str, Any]]:
    """Parse worker stdout lines; a line that is not one JSON object fails the caller's test."""
    parsed = []
    for text in messages:
        document = json.loads(text)
        assert isinstance(document, dict), text
        parsed.append(document)
    return parsed


@dataclass
class Fleet:
    """A running ``python -m fleet.local.fleet``, and clients that talk to the emulator directly."""

    process: subprocess.Popen[str]
    endpoint: str
    worker_endpoint: str
    queues: dict[str, str]
    names: FleetNames
    console: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the emulator's dummy credentials
            region_name=REGION,
        )
        config = Config(retries={"mode": "standard", "total_max_attempts": 5}, max_pool_connections=16)
        self.sqs = session.client("sqs", endpoint_url=self.endpoint, config=config)
        self.logs = session.client("logs", endpoint_url=self.endpoint, config=config)

    # --- the proxy ----------------------------------------------------------------------------------
    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback proxy started by this fleet
            self.worker_endpoint + "/__proxy__/faults",
            data=json.dumps({"rules": rules}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:  # noqa: S310
            assert 204 == response.status

    def proxy_stats(self) -> dict[str, dict[str, int]]:
        with urllib.request.urlopen(self.worker_endpoint + "/__proxy__/stats") as response:  # noqa: S310
            return dict(json.load(response))

    # --- queues --------------------------------------------------------------------------------------
    def send(self, queue: str, bodies: list[str], attributes: list[dict[str, str]] | None = None) -> list[str]:
        """SendMessageBatch in tens (one entry per call when large); returns MessageIds in order."""
        ids: list[str] = []
        attributes = attributes or [{} for _ in bodies]
        start = 0
        while start < len(bodies):
            end, total = start, 0
            # SQS caps a batch at 256 KiB of bodies and attributes, counted in bytes (UTF-8), not characters.
            while end < len(bodies) and end - start < 10 and (end == start or total + _size(bodies[end]) < 200_000):
                total += _size(bodies[end])
                end += 1
            chunk = list(range(start, end))
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": bodies[i],
                    "MessageAttributes": {
                        k: {"DataType": "String", "StringValue": v} for k, v in attributes[i].items()
                    },
                }
                for i in chunk
            ]
            response = self.sqs.send_message_batch(QueueUrl=self.queues[queue], Entries=entries)
            assert not response.get("Failed"), response["Failed"]
            by_id = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
            ids.extend(by_id[str(i)] for i in chunk)
            start = end
        return ids

    def depth(self, queue: str) -> tuple[int, int]:
        """(visible, in flight) for one of the fleet's queues."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queues[queue],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, queue: str) -> list[dict[str, Any]]:
        """Receive every visible message of ``queue`` (they stay hidden for a minute), with attributes."""
        found: dict[str, dict[str, Any]] = {}
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queues[queue],
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return list(found.values())
            found.update({m["MessageId"]: m for m in messages})

    # --- logs ----------------------------------------------------------------------------------------
    def service_lines(self, group: str, stream_prefix: str | None = None) -> list[tuple[str, str]]:
        """(stream, message) for every line the fleet shipped from a service's processes, in order."""
        kwargs: dict[str, Any] = {"logGroupName": group}
        if stream_prefix:
            kwargs["logStreamNamePrefix"] = stream_prefix
        lines: list[tuple[int, int, str, str]] = []
        while True:
            page = self.logs.filter_log_events(**kwargs)
            lines.extend(
                (e["timestamp"], e.get("ingestionTime", 0), e["logStreamName"], e["message"]) for e in page["events"]
            )
            token = page.get("nextToken")
            if not token or not page["events"]:
                break
            kwargs["nextToken"] = token
        # moto's FilterLogEvents ignores logStreamNamePrefix, so filter here too.
        ordered = sorted(lines, key=lambda line: line[:2])
        return [(stream, message) for _, _, stream, message in ordered if stream.startswith(stream_prefix or "")]

    def main_job_log(self) -> list[dict[str, Any]]:
        return worker_lines(message for _, message in self.service_lines(self.names.main_job_log_group))

    def background_log(self) -> list[dict[str, Any]]:
        group = self.names.background_job_log_group
        return worker_lines(message for _, message in self.service_lines(group, "background-job/"))

    def ledger_items(self) -> dict[str, dict[str, Any]]:
        """Every job ledger item by job ID, as plain values (a consistent Scan: tests only, a small table)."""
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        items = dynamodb.scan(TableName=self.names.job_ledger_table, ConsistentRead=True)["Items"]
        flat = [{key: next(iter(value.values())) for key, value in item.items()} for item in items]
        return {str(item["jobId"]): item for item in flat}

    def job_stream_exists(self, job_id: str) -> bool:
        """True once the job's own stream exists: the job log creates it as the job starts."""
        streams = self.logs.describe_log_streams(
            logGroupName=self.names.background_job_log_group, logStreamNamePrefix=job_stream_name(job_id)
        )["logStreams"]
        return any(stream["logStreamName"] == job_stream_name(job_id) for stream in streams)

    def job_stream(self, job_id: str) -> list[dict[str, Any]]:
        """The events of one job's own stream (empty until it exists), each with CloudWatch's event time as
        ``@timestamp`` (epoch ms, Logs Insights' name): the events themselves no longer repeat it (issue 28)."""
        try:
            events = self.logs.get_log_events(
                logGroupName=self.names.background_job_log_group,
                logStreamName=job_stream_name(job_id),
                startFromHead=True,
            )["events"]
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        return [{**json.loads(event["message"]), "@timestamp": event["timestamp"]} for event in events]

    # --- processes -----------------------------------------------------------------------------------
    def pids(self, label: str) -> list[int]:
        return [int(m["pid"]) for line in list(self.console) if (m := _STARTED.search(line)) and m["label"] == label]

    def exits(self) -> list[tuple[str, int]]:
        return [(m["label"], int(m["code"])) for line in list(self.console) if (m := _EXITED.search(line))]

    def worker_env(self, **overrides: str) -> dict[str, str]:
        """The environment the fleet gives its workers, for a worker this test starts itself."""
        heartbeat = Path(tempfile.mkdtemp(prefix="reliability-")) / "worker.heartbeat"
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": self.worker_endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **EMULATOR_CREDENTIALS,
            "PYTHONUNBUFFERED": "1",
            ENV_TRIGGER_QUEUE_URL: self.queues["trigger"],
            ENV_TRIGGER_DLQ_URL: self.queues["trigger_dlq"],
            ENV_BACKGROUND_QUEUE_URL: self.queues["background"],
            ENV_BACKGROUND_DLQ_URL: self.queues["background_dlq"],
            ENV_JOB_LOG_GROUP: self.names.background_job_log_group,
            ENV_HEARTBEAT_FILE: str(heartbeat),
            **overrides,
        }


@contextmanager
def running_fleet(
    environment: str,
    *,
    settings: Mapping[str, str] | None = None,
    background_workers: int = 1,
    proxy: bool = True,
    new_session: bool = False,
) -> Iterator[Fleet]:
    """Start the fleet (``--proxy`` unless told otherwise) and wait for ``fleet.ready``; stop it with SIGTERM
    and expect 0. ``new_session`` gives the supervisor its own process group, for a scenario that kills it."""
    env = {
        **os.environ,
        "FLEET_PROJECT_NAME": PROJECT,
        "FLEET_ENVIRONMENT": environment,
        **QUICK_SETTINGS,
        **(settings or {}),
    }
    command = [sys.executable, "-m", "fleet.local.fleet", "--port", str(free_port()), "--quiet"]
    command += ["--proxy"] if proxy else []
    command += ["--background-workers", str(background_workers)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=new_session
    )
    console: list[str] = []
    assert process.stdout is not None
    pump = threading.Thread(target=lambda: console.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    pump.start()

    def ready() -> dict[str, Any] | None:
        for line in list(console):
            if line.startswith('{"event": "fleet.ready"'):
                return dict(json.loads(line))
        assert process.poll() is None, "".join(console)
        return None

    try:
        announcement = wait_until(ready, timeout=60, what="fleet.ready")
        yield Fleet(
            process=process,
            endpoint=announcement["endpoint"],
            worker_endpoint=announcement["worker_endpoint"],
            queues=announcement["queues"],
            names=FleetNames.for_deployment(PROJECT, environment),
            console=console,
        )
    finally:
        killed = process.poll() == -signal.SIGKILL
        if not killed:
            process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=90)
        pump.join(timeout=10)
        process.stdout.close()
    assert killed or 0 == exit_code, "".join(console[-40:])


@dataclass
class WorkerProcess:
    """One worker started by a test with exactly the container entry point, its output captured."""

    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    _pump: threading.Thread | None = None
    _terminated: bool = False

    @classmethod
    def start(cls, module: str, env: Mapping[str, str]) -> WorkerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        worker = cls(process)
        assert process.stdout is not None
        worker._pump = threading.Thread(
            target=lambda: worker.output.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        worker._pump.start()
        return worker

    def lines(self) -> list[dict[str, Any]]:
        return worker_lines(line for line in list(self.output) if line.strip())

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    def terminate(self) -> None:
        """One SIGTERM, as ECS sends when it stops a task (a second one would force an exit)."""
        if not self._terminated and self.process.poll() is None:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int:
        """The exit status, once the process has exited and all its output is read."""
        code = self.process.wait(timeout=timeout)
        if self._pump is not None:
            self._pump.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code

    def stop(self, timeout: float = 60) -> int:
        self.terminate()
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait(timeout=10)


def events_named(lines: Iterable[dict[str, Any]], name: str, **match: Any) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == name and all(line.get(k) == v for k, v in match.items())]


def executions(background_log: Iterable[dict[str, Any]]) -> Counter[str]:
    """How many times each jobId reached ``job.succeeded`` in the background workers' stdout."""
    return Counter(str(line["job_id"]) for line in background_log if line.get("event") == "job.succeeded")


def job_ids_by_message(main_job_log: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Trigger MessageId to the jobIds main_job derived for it (one, if the contract holds)."""
    found: dict[str, set[str]] = {}
    for line in main_job_log:
        if line.get("event") == "trigger.received":
            found.setdefault(str(line["message_id"]), set()).add(str(line["job_id"]))
    return found


def emf_total(lines: Iterable[dict[str, Any]], metric: str) -> float:
    """Sum of one EMF metric over the lines that carry it."""
    return sum(float(line[metric]) for line in lines if "_aws" in line and metric in line)


def effects(path: Path) -> Counter[str]:
    """Runs per job ID, from diagnostic-sleep's effect file (DIAGNOSTIC_EFFECTS_FILE): side effects, not log lines."""
    return Counter(path.read_text().split()) if path.exists() else Counter()
