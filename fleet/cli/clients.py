"""boto3 clients for the operator CLI, from boto3's standard configuration only.

``AWS_ENDPOINT_URL``, ``AWS_REGION`` and ``AWS_PROFILE`` decide where the calls go, so the same command
works against the local emulator and against AWS. boto3 itself reads only ``AWS_DEFAULT_REGION``; the
AWS CLI and the other SDKs read ``AWS_REGION`` first, and so does :func:`session`. Retries are
botocore's standard mode; connect timeouts are short so that an emulator that is not running is
reported quickly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

# No max_attempts here: standard mode's default (3) applies, and AWS_MAX_ATTEMPTS can change it.
_CONFIG = Config(retries={"mode": "standard"}, connect_timeout=3, read_timeout=30)


@dataclass(frozen=True, slots=True)
class Clients:
    """The clients one command needs; tests build them inside moto's ``mock_aws``."""

    sqs: SQSClient
    logs: CloudWatchLogsClient
    cloudwatch: CloudWatchClient
    ecs: ECSClient
    #: Typed Any: the project installs no DynamoDB stubs; fleet.cli.ledger is its only user.
    dynamodb: Any
    #: EventBridge Scheduler, typed Any likewise (no stubs); fleet.cli.schedules and send_later use it.
    #: Defaults to None only so that tests building Clients for other commands need not name it.
    scheduler: Any = None

    @classmethod
    def from_environment(cls) -> Clients:
        aws = session()
        return cls(
            sqs=aws.client("sqs", config=_CONFIG),
            logs=aws.client("logs", config=_CONFIG),
            cloudwatch=aws.client("cloudwatch", config=_CONFIG),
            ecs=aws.client("ecs", config=_CONFIG),
            dynamodb=aws.client("dynamodb", config=_CONFIG),
            scheduler=aws.client("scheduler", config=_CONFIG),
        )


def session(environ: Mapping[str, str] | None = None) -> boto3.session.Session:
    """A session in ``AWS_REGION`` if set, else wherever boto3 looks (AWS_DEFAULT_REGION, the profile)."""
    env = os.environ if environ is None else environ
    return boto3.session.Session(region_name=env.get("AWS_REGION", "").strip() or None)


def endpoint_description() -> str:
    """Where calls go, for error messages: the emulator's URL or the AWS region."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if endpoint:
        return endpoint
    region = session().region_name
    return f"AWS region {region}" if region else "AWS (no region configured)"
