"""Shared fixtures: moto in-process AWS, the fleet's resources provisioned as Terraform would, request counting."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from common import side_channels
from common.names import FleetNames
from common.settings import Settings
from fleet.local.emulator import serialise_dynamodb
from fleet.local.provision import QueueUrls, provision

# DynamoDB is atomic per transaction; moto in-process is not across threads (see fleet/local/emulator.py).
serialise_dynamodb()

#: Set for every test; a log capture must never contain it (see the security tests).
TEST_SECRET_ACCESS_KEY = "test-secret-never-logged-0123456789"
REGION = "us-east-1"
VISIBILITY_TIMEOUT = 30
MAX_RECEIVE_COUNT = 3


@pytest.fixture(autouse=True)
def _fresh_side_channels() -> Iterator[None]:
    """A worker's side-channel state is per process; a test that broke stdout must not stop the next worker."""
    yield
    for channel in side_channels.ALL:
        channel.reset()


@pytest.fixture(autouse=True)
def _aws_test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real AWS account or an emulator left running by someone else."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


class RequestCounter:
    """Counts API calls by operation name through botocore's event hooks on the real clients."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def total(self, *names: str) -> int:
        return sum(self.calls[name] for name in names) if names else sum(self.calls.values())


@dataclass
class AwsFleet:
    """The fleet's AWS resources in moto, plus clients and a request counter on them."""

    sqs: Any
    logs: Any
    dynamodb: Any
    names: FleetNames
    urls: QueueUrls
    requests: RequestCounter

    def ledger_settings(self, service: str, **overrides: Any) -> Settings:
        """Settings with the job ledger on, as the local fleet and Terraform configure it."""
        return self.settings(service, job_ledger_table=self.names.job_ledger_table, **overrides)

    def settings(self, service: str, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "service": service,
            "trigger_queue_url": self.urls.trigger,
            "trigger_dlq_url": self.urls.trigger_dlq,
            "background_queue_url": self.urls.background,
            "background_dlq_url": self.urls.background_dlq,
            "job_log_group": self.names.background_job_log_group,
            "concurrency": 4,
            "receive_wait_seconds": 0,
            "visibility_timeout_seconds": VISIBILITY_TIMEOUT,
            "max_receive_count": MAX_RECEIVE_COUNT,
            "shutdown_grace_seconds": 10.0,
            "retry_base_seconds": 2.0,
            "retry_max_seconds": 60.0,
            "heartbeat_file": "",
        }
        return Settings(**{**base, **overrides})

    def receive_all(self, queue_url: str, attempts: int = 5) -> list[dict[str, Any]]:
        """Every visible message on ``queue_url`` (made invisible for 30 s), with all attributes."""
        found: dict[str, dict[str, Any]] = {}
        for _ in range(attempts):
            response = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            for message in response.get("Messages", []):
                found[message["MessageId"]] = message
        return list(found.values())

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) for ``queue_url``."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def aws_fleet() -> Iterator[AwsFleet]:
    """Queues (with redrive) and log groups created exactly as the local fleet and Terraform create them."""
    with mock_aws():
        config = Config(retries={"mode": "standard", "total_max_attempts": 4}, max_pool_connections=32)
        sqs = boto3.client("sqs", region_name=REGION, config=config)
        logs = boto3.client("logs", region_name=REGION, config=config)
        dynamodb = boto3.client("dynamodb", region_name=REGION, config=config)
        names = FleetNames.for_deployment("fleet-test", "test")
        urls = provision(
            sqs=sqs,
            logs=logs,
            dynamodb=dynamodb,
            names=names,
            visibility_timeout=VISIBILITY_TIMEOUT,
            max_receive_count=MAX_RECEIVE_COUNT,
        )
        requests = RequestCounter()
        requests.attach(sqs)
        requests.attach(logs)
        requests.attach(dynamodb)
        yield AwsFleet(sqs=sqs, logs=logs, dynamodb=dynamodb, names=names, urls=urls, requests=requests)
