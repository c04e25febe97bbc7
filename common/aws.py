"""boto3 clients, created once per process and shared by every thread.

Configuration comes only from boto3's standard chain (AWS_ENDPOINT_URL, credentials, the profile), so
the same code runs against AWS and against the local emulator. The one addition is the region:
botocore reads only AWS_DEFAULT_REGION, while ECS task definitions, the README and every AWS SDK but
Python's name AWS_REGION. ECS injects both on Fargate, but ``docker run``, compose or Kubernetes given
the documented AWS_REGION alone would crash every client with NoRegionError, so :func:`region` reads
AWS_REGION first and a missing region is a configuration error (exit 78, ``config.invalid``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import boto3
import botocore.session
from botocore.config import Config

from common.settings import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

ENV_AWS_REGION: Final = "AWS_REGION"
ENV_AWS_DEFAULT_REGION: Final = "AWS_DEFAULT_REGION"
#: us-east-1, eu-central-2, us-gov-west-1, cn-north-1: what goes into endpoint host names.
_REGION_NAME: Final = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")


def region(environ: Mapping[str, str] | None = None) -> str:
    """AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region; ConfigError if none or malformed."""
    env = os.environ if environ is None else environ
    name = env.get(ENV_AWS_REGION, "").strip() or env.get(ENV_AWS_DEFAULT_REGION, "").strip()
    if not name and environ is None:
        name = str(botocore.session.Session().get_config_variable("region") or "")
    if not name:
        raise ConfigError(f"no AWS region: set {ENV_AWS_REGION} (ECS task definitions set it)")
    if not _REGION_NAME.fullmatch(name):
        raise ConfigError(f"the AWS region must be a region name such as us-east-1, got {name!r}")
    return name


def _config(pool_size: int, read_timeout: int) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": 4},
        max_pool_connections=pool_size,
        connect_timeout=5,
        read_timeout=read_timeout,
    )


def sqs_client(pool_size: int = 16) -> SQSClient:
    # The read timeout must outlast a 20-second long poll.
    return boto3.client("sqs", region_name=region(), config=_config(pool_size, read_timeout=30))


def logs_client(pool_size: int = 16) -> CloudWatchLogsClient:
    # Short timeouts: a CloudWatch Logs outage must not hold a job's slot for long.
    return boto3.client("logs", region_name=region(), config=_config(pool_size, read_timeout=10))


def dynamodb_client(pool_size: int = 16) -> DynamoDBClient:
    # Ledger writes sit between a job and its delete: keep a DynamoDB outage from holding them long.
    return boto3.client("dynamodb", region_name=region(), config=_config(pool_size, read_timeout=10))
