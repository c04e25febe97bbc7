"""The images check gives each container exactly the environment tf/ecs.tf passes, plus ECS's own."""

from __future__ import annotations

import pytest

from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE, FleetNames
from common.settings import REQUIRED_ENV, Settings
from fleet.local.provision import QueueUrls
from fleet.local.task_environment import (
    ECS_TF,
    EnvironmentMismatch,
    ecs_injected,
    names_in_tf,
    task_environment,
)
from tests.tf.conftest import load_config

NAMES = FleetNames.for_deployment("fleet", "images")
URLS = QueueUrls(trigger="http://q/t", trigger_dlq="http://q/td", background="http://q/b", background_dlq="http://q/bd")


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_the_container_gets_exactly_the_names_tf_passes(service: str) -> None:
    """Same names as the task definition's environment map (parsed with python-hcl2), no more and no fewer."""
    local = "main_job_environment" if service == MAIN_JOB_SERVICE else "background_job_environment"
    (expected,) = load_config().locals[local]

    env = task_environment(service, names=NAMES, urls=URLS, region="us-east-1")

    assert sorted(expected) == sorted(env)


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_the_values_start_a_worker_with_terraforms_defaults(service: str) -> None:
    """The rendered environment is a valid configuration, equal to the worker's defaults where tf defaults."""
    env = task_environment(service, names=NAMES, urls=URLS, region="eu-west-1")

    settings = Settings.from_env(service, env)
    defaults = Settings.from_env(service, dict.fromkeys(REQUIRED_ENV[service], "x"))
    assert "eu-west-1" == env["AWS_REGION"]
    assert defaults.shutdown_grace_seconds == settings.shutdown_grace_seconds
    assert defaults.receive_wait_seconds == settings.receive_wait_seconds
    # main_job never touches the ledger, so only background_job is told the table.
    expected_table = NAMES.job_ledger_table if service == BACKGROUND_JOB_SERVICE else ""
    assert expected_table == settings.job_ledger_table


def test_a_variable_tf_adds_that_the_check_cannot_fill_is_an_error() -> None:
    """A new variable in tf/ecs.tf must fail the images check, not be silently left out."""
    text = ECS_TF.read_text(encoding="utf-8").replace(
        "    AWS_REGION                 = var.aws_region\n",
        "    AWS_REGION                 = var.aws_region\n    NEW_SETTING = var.new_setting\n",
        1,
    )

    assert "NEW_SETTING" in names_in_tf(MAIN_JOB_SERVICE, text)
    with pytest.raises(EnvironmentMismatch, match="NEW_SETTING"):
        task_environment(MAIN_JOB_SERVICE, names=NAMES, urls=URLS, region="us-east-1", tf_text=text)


def test_ecs_adds_the_default_region_and_execution_env() -> None:
    """Fargate injects AWS_DEFAULT_REGION and AWS_EXECUTION_ENV; the emulator stands in for the endpoint."""
    injected = ecs_injected("us-east-1", "http://127.0.0.1:4599", {"AWS_ACCESS_KEY_ID": "local"})

    assert {"AWS_DEFAULT_REGION": "us-east-1", "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}.items() <= injected.items()
    assert "http://127.0.0.1:4599" == injected["AWS_ENDPOINT_URL"]
