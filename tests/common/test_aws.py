"""The workers' clients take their region from AWS_REGION, as the task definition sets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from common import aws
from common.settings import ConfigError
from common.worker import EXIT_CONFIG_ERROR


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    """No region variable and no profile file that could name one."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return monkeypatch


@pytest.mark.parametrize("make", [aws.sqs_client, aws.logs_client, aws.dynamodb_client])
def test_clients_take_the_region_from_aws_region_alone(no_region: pytest.MonkeyPatch, make) -> None:
    """botocore reads only AWS_DEFAULT_REGION: with AWS_REGION alone every client raised NoRegionError."""
    no_region.setenv("AWS_REGION", "eu-west-2")

    assert "eu-west-2" == make().meta.region_name


def test_aws_region_wins_over_aws_default_region(no_region: pytest.MonkeyPatch) -> None:
    """AWS_REGION is the variable the task definition sets; AWS_DEFAULT_REGION is only the fallback."""
    no_region.setenv("AWS_REGION", "eu-west-2")
    no_region.setenv("AWS_DEFAULT_REGION", "us-east-1")

    assert "eu-west-2" == aws.sqs_client().meta.region_name


def test_aws_default_region_alone_still_works(no_region: pytest.MonkeyPatch) -> None:
    """boto3's own variable keeps working, as ECS injects it on Fargate."""
    no_region.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")

    assert "ap-southeast-2" == aws.region()


def test_the_profile_region_is_used_when_no_variable_names_one(no_region: pytest.MonkeyPatch, tmp_path) -> None:
    """A region in the AWS config file (boto3's standard chain) is honoured."""
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-central-1\n")
    no_region.setenv("AWS_CONFIG_FILE", str(config))

    assert "eu-central-1" == aws.region()


def test_no_region_anywhere_is_a_config_error_naming_aws_region(no_region: pytest.MonkeyPatch) -> None:
    """Without a region the worker must not start: the error says which variable to set."""
    with pytest.raises(ConfigError, match="AWS_REGION"):
        aws.region()


@pytest.mark.parametrize("bad", ["us_east_1", "US-EAST-1", "evil.example.com/x", "us-east-1x", "useast1"])
def test_a_malformed_region_is_refused(bad: str) -> None:
    """The region goes into endpoint host names: anything but a region name is a configuration error."""
    with pytest.raises(ConfigError, match="region name"):
        aws.region({"AWS_REGION": bad})


@pytest.mark.parametrize("module", ["main_job", "background_job"])
def test_a_worker_with_no_region_exits_78_with_config_invalid(tmp_path, module: str) -> None:
    """No region at all used to die with a NoRegionError traceback and exit 1, skipping config.invalid."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TRIGGER_QUEUE_URL": "http://127.0.0.1:9/q",
        "TRIGGER_DLQ_URL": "http://127.0.0.1:9/q-dlq",
        "BACKGROUND_QUEUE_URL": "http://127.0.0.1:9/b",
        "BACKGROUND_DLQ_URL": "http://127.0.0.1:9/b-dlq",
        "JOB_LOG_GROUP": "/ecs/x/background-job",
        "HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }

    result = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert EXIT_CONFIG_ERROR == result.returncode, result.stderr
    (line,) = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert "config.invalid" == line["event"]
    assert "AWS_REGION" in line["error"]
    assert "Traceback" not in result.stderr
