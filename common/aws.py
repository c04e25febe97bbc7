"""boto3 clients, created once per process and shared by every thread.

Configuration comes only from boto3's standard chain (AWS_ENDPOINT_URL, AWS_REGION, credentials), so
the same code runs against AWS and against the local emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient


def _config(pool_size: int, read_timeout: int) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": 4},
        max_pool_connections=pool_size,
        connect_timeout=5,
        read_timeout=read_timeout,
    )


def sqs_client(pool_size: int = 16) -> SQSClient:
    # The read timeout must outlast a 20-second long poll.
    return boto3.client("sqs", config=_config(pool_size, read_timeout=30))


def logs_client(pool_size: int = 16) -> CloudWatchLogsClient:
    # Short timeouts: a CloudWatch Logs outage must not hold a job's slot for long.
    return boto3.client("logs", config=_config(pool_size, read_timeout=10))


def dynamodb_client(pool_size: int = 16) -> DynamoDBClient:
    # Ledger writes sit between a job and its delete: keep a DynamoDB outage from holding them long.
    return boto3.client("dynamodb", config=_config(pool_size, read_timeout=10))
