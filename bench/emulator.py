"""The emulator every scenario shares: one moto server, with fresh queues and log groups per scenario.

One server for the whole run keeps the comparison fair (the fleet, the naive baseline and the
ceiling all talk to the same process). Each scenario starts from a reset server with fresh queues
and log groups: moto keeps every message and log event in memory and some of its calls slow down as
that grows, so without the reset whichever scenario ran first would have a faster emulator.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import boto3
import psutil
from botocore.config import Config

from bench.dynamodb_cost import ItemWrite, TableSchema
from common.names import FleetNames
from fleet.local.dynamodb_recorder import RECORDS_PATH
from fleet.local.emulator import start_emulator, stop_emulator
from fleet.local.provision import QueueUrls, provision, provision_job_ledger

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

HOST: Final = "127.0.0.1"
REGION: Final = "us-east-1"
#: The emulator accepts any credentials; fixed dummy ones keep real ones away from it.
CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
PROJECT: Final = "bench"
VISIBILITY_TIMEOUT: Final = 60
MAX_RECEIVE_COUNT: Final = 5
_STARTUP_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class Resources:
    """One scenario's queues and log groups."""

    names: FleetNames
    urls: QueueUrls


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((HOST, port)) == 0


class Emulator:
    """moto server as a child process; use as a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._scenarios = 0
        config = Config(retries={"mode": "standard", "total_max_attempts": 4}, max_pool_connections=8)
        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        self.sqs: SQSClient = session.client("sqs", endpoint_url=self.endpoint, config=config)
        self.logs: CloudWatchLogsClient = session.client("logs", endpoint_url=self.endpoint, config=config)
        # Typed loosely: the job ledger is the only DynamoDB the bench touches, and only to create it.
        self.dynamodb: Any = session.client("dynamodb", endpoint_url=self.endpoint, config=config)

    def __enter__(self) -> Emulator:
        # The fleet's own emulator launcher: moto with SQS and DynamoDB writes serialised, as on AWS, and
        # every DynamoDB item write recorded with its item before and after (the cost model's input).
        self.process = start_emulator(self.port, host=HOST, timeout=_STARTUP_SECONDS, record_dynamodb=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.sqs.close()
        self.logs.close()
        self.dynamodb.close()
        if self.process is not None:
            stop_emulator(self.process)

    def cpu_seconds(self) -> float:
        """CPU time the emulator has used so far: its share of a scenario's cost, reported alongside."""
        if self.process is None:
            return 0.0
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def job_stream_bytes(self, log_group: str, streams: int = 5) -> float:
        """Billable bytes of one job's stream (event sizes plus 26 bytes each), averaged over a few jobs."""
        found = self.logs.describe_log_streams(logGroupName=log_group, limit=streams)["logStreams"]
        sizes = [
            sum(
                len(event["message"].encode()) + 26
                for event in self.logs.get_log_events(
                    logGroupName=log_group, logStreamName=stream["logStreamName"], startFromHead=True
                )["events"]
            )
            for stream in found
        ]
        return sum(sizes) / len(sizes) if sizes else 0.0

    def client_env(self) -> dict[str, str]:
        """What a process needs to reach this emulator through boto3's standard chain."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **CREDENTIALS}

    def fresh_resources(self, label: str) -> Resources:
        """Reset the emulator, then provision empty queues and log groups, named as Terraform would name them."""
        self._reset()
        self._scenarios += 1
        names = FleetNames.for_deployment(PROJECT, f"{self._scenarios:02d}-{label}")
        urls = provision(
            sqs=self.sqs,
            logs=self.logs,
            names=names,
            visibility_timeout=VISIBILITY_TIMEOUT,
            max_receive_count=MAX_RECEIVE_COUNT,
        )
        return Resources(names=names, urls=urls)

    def ensure_ledger_table(self, names: FleetNames) -> str:
        """The job ledger table as tf/dynamodb.tf and the local fleet create it (idempotent)."""
        provision_job_ledger(self.dynamodb, names.job_ledger_table)
        return names.job_ledger_table

    def dynamodb_writes(self) -> list[ItemWrite]:
        """Every DynamoDB item write since the last call, in the order the emulator applied them."""
        # The URL is always http://127.0.0.1:<port> of the server this object started.
        with urllib.request.urlopen(self.endpoint + RECORDS_PATH, timeout=30) as response:  # noqa: S310
            records = json.loads(response.read())
        return [ItemWrite(**record) for record in records]

    def table_schema(self, table: str) -> TableSchema:
        """The table's keys and global secondary indexes, as DescribeTable reports them."""
        return TableSchema.from_describe_table(self.dynamodb.describe_table(TableName=table)["Table"])

    def _reset(self) -> None:
        # The URL is always http://127.0.0.1:<port> of the server this object started.
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    def queue_empty(self, queue_url: str) -> bool:
        """True once nothing is visible or in flight: every message has been deleted."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == "0" == attributes["ApproximateNumberOfMessagesNotVisible"]
