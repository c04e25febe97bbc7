"""Tests for the fleet CLI's error boundary: one readable line on stderr, never a traceback."""

from __future__ import annotations

import io
import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from fleet.cli import cli
from fleet.cli.deployment import Deployment


def _run_without_mock(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_an_unknown_queue_is_one_line_naming_it(fleet):
    """A queue that does not exist is named on one line of stderr, with exit status 1."""
    result = fleet.run("dlq", "peek", "no-such-queue")

    assert 1 == result.code
    assert "fleet: queue no-such-queue does not exist (known aliases: triggers, triggers-dlq, " in result.err
    assert 1 == len(result.err.splitlines())
    assert "" == result.out


def test_missing_credentials_are_reported_without_a_traceback(monkeypatch, tmp_path):
    """With no credentials anywhere, the CLI says so in one line and exits 1."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("FLEET_ENVIRONMENT", "prod")  # chosen explicitly: the CLI never guesses it

    code, _, err = _run_without_mock("status")

    assert 1 == code
    assert "fleet: no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY\n" == err


def test_an_emulator_that_is_not_running_is_named(monkeypatch):
    """A refused connection to AWS_ENDPOINT_URL names the endpoint and suggests starting the fleet."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, value)

    code, _, err = _run_without_mock("status")

    assert 1 == code
    assert f"fleet: cannot reach {endpoint}: is the local emulator running (./deploy.sh local)?\n" == err


def test_unreachable_aws_suggests_aws_endpoint_url(monkeypatch):
    """Without AWS_ENDPOINT_URL, an unreachable endpoint names the region and hints at the local emulator."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("FLEET_LOCAL_PORT", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    error = EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/")

    assert (
        "cannot reach AWS region eu-west-1: check the network, "
        "or for the local fleet set AWS_ENDPOINT_URL=http://127.0.0.1:4566" == cli.describe(error)
    )


def test_the_local_endpoint_hint_names_the_port_the_fleet_was_started_on(monkeypatch):
    """With FLEET_LOCAL_PORT set, the hint names that port, not the default 4566."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("FLEET_LOCAL_PORT", "4599")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    error = EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/")

    assert cli.describe(error).endswith("or for the local fleet set AWS_ENDPOINT_URL=http://127.0.0.1:4599")


def test_an_invalid_job_id_is_refused_before_any_call(fleet):
    """A job ID that is not a ULID is refused with the reason."""
    result = fleet.run("job", "not-a-ulid")

    assert 1 == result.code
    assert "fleet: jobId must be a 26-character upper-case ULID\n" == result.err


def test_a_bad_since_is_explained(fleet):
    """--since takes a number and a unit; anything else is explained, not a traceback."""
    result = fleet.run("jobs", "--since", "yesterday")

    assert 1 == result.code
    assert "expected a positive number and a unit s, m, h or d" in result.err


def test_usage_errors_exit_2(fleet, capsys):
    """argparse usage errors keep argparse's exit status 2."""
    with pytest.raises(SystemExit) as raised:
        fleet.run("redrive")

    assert 2 == raised.value.code
    assert "QUEUE" in capsys.readouterr().err


def test_the_environment_defaults_to_local_against_an_emulator():
    """With AWS_ENDPOINT_URL set and no FLEET_ENVIRONMENT, names are the local fleet's."""
    environ = {"AWS_ENDPOINT_URL": "http://localhost:5000"}

    assert "message-driven-microservices-local" == Deployment.from_env(environ).names.prefix
    assert "message-driven-microservices-prod" == Deployment.from_env({}, environment="prod").names.prefix
    assert "shop-dev" == Deployment.from_env({"FLEET_PROJECT_NAME": "shop", "FLEET_ENVIRONMENT": "dev"}).names.prefix


def test_without_an_endpoint_or_an_environment_fleet_refuses_to_guess_prod(monkeypatch):
    """No AWS_ENDPOINT_URL and no FLEET_ENVIRONMENT: exit 2 naming both ways out, no AWS call made."""
    for name in ("AWS_ENDPOINT_URL", "FLEET_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLEET_LOCAL_PORT", "4599")

    code, out, err = _run_without_mock("status")

    assert (2, "") == (code, out)
    assert (
        "fleet: no deployment chosen: for the local fleet export AWS_ENDPOINT_URL=http://127.0.0.1:4599; "
        "for AWS pass --environment NAME or export FLEET_ENVIRONMENT=NAME (for example prod)\n" == err
    )


def test_an_aws_error_is_one_line_with_its_code():
    """A ClientError is shown as operation, code and message."""
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "GetQueueUrl")

    assert "GetQueueUrl failed: AccessDenied: not allowed" == cli.describe(error)
