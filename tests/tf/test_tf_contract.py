"""Terraform and the Python code agree on names, environment variables and defaults (one source of truth)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from common import settings
from common.names import BACKGROUND_JOB_SERVICE, DEFAULT_PROJECT_NAME, MAIN_JOB_SERVICE, FleetNames
from common.settings import REQUIRED_ENV, Settings

#: Every ENV_* constant in common/settings.py: the complete list of variables the workers read.
ALL_WORKER_ENV = frozenset(
    value for name, value in vars(settings).items() if name.startswith("ENV_") and isinstance(value, str)
)
#: Variables that belong to the other service only.
NOT_FOR = {
    MAIN_JOB_SERVICE: {
        settings.ENV_BACKGROUND_DLQ_URL,
        settings.ENV_JOB_LOG_GROUP,
        settings.ENV_BATCH_WINDOW_SECONDS,
        settings.ENV_LOGS_OUTAGE_COOLDOWN_SECONDS,
        # main_job never touches the ledger: background_job's claim creates a job's item.
        settings.ENV_JOB_LEDGER_TABLE,
        settings.ENV_JOB_LEDGER_RETENTION_DAYS,
        settings.ENV_JOB_LEDGER_UNAVAILABLE,
        # Only background_job runs jobs in a pool, under time limits.
        settings.ENV_JOB_TIMEOUT_SECONDS,
        settings.ENV_MIN_LIVE_SLOTS_SHARE,
        settings.ENV_HUNG_SLOT_UNHEALTHY_SECONDS,
        settings.ENV_HUNG_SLOT_EXIT_SECONDS,
    },
    BACKGROUND_JOB_SERVICE: {settings.ENV_TRIGGER_QUEUE_URL, settings.ENV_TRIGGER_DLQ_URL},
}
ENVIRONMENT_LOCAL = {
    MAIN_JOB_SERVICE: "main_job_environment",
    BACKGROUND_JOB_SERVICE: "background_job_environment",
}
SERVICE_KEY = {MAIN_JOB_SERVICE: "main_job", BACKGROUND_JOB_SERVICE: "background_job"}
CONSUMED_QUEUE = {MAIN_JOB_SERVICE: "trigger", BACKGROUND_JOB_SERVICE: "background"}
SETTINGS_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Settings)}


@pytest.fixture(scope="module")
def names(tf_config) -> FleetNames:
    return FleetNames.for_deployment(tf_config.default("project_name"), tf_config.default("environment"))


def _environment(tf_config, service: str) -> dict[str, str]:
    (environment,) = tf_config.locals[ENVIRONMENT_LOCAL[service]]
    return environment


def test_defaults_follow_the_original_project(tf_config) -> None:
    """project, environment, region and task size defaults are the ones the issue fixes."""
    assert tf_config.default("project_name") == DEFAULT_PROJECT_NAME
    assert tf_config.default("environment") == "prod"
    assert tf_config.default("aws_region") == "us-east-1"
    for key in SERVICE_KEY.values():
        text = tf_config.raw_text["variables.tf"]
        block = text[text.index(f'variable "{key}"') :]
        assert re.search(r"cpu\s*=\s*optional\(number,\s*256\)", block)
        assert re.search(r"memory\s*=\s*optional\(number,\s*512\)", block)
        assert re.search(r"min_capacity\s*=\s*optional\(number,\s*0\)", block)


def test_name_prefix_is_project_dash_environment(tf_config, names: FleetNames) -> None:
    """Every name derives from the same prefix as common.names."""
    assert tf_config.render(tf_config.locals["name_prefix"]) == names.prefix


def test_queue_names_are_the_ones_common_names_derives(tf_config, names: FleetNames) -> None:
    """The workers find their queues by URL, but operators and tools find them by these names."""
    (queue_names,) = tf_config.locals["queue_names"]
    rendered = {key: tf_config.render(template) for key, template in queue_names.items()}
    assert rendered == {
        "trigger": names.trigger_queue,
        "trigger_dlq": names.trigger_dlq,
        "background": names.background_queue,
        "background_dlq": names.background_dlq,
    }


def test_each_source_queue_redrives_to_the_dlq_common_names_pairs_it_with(tf_config, names: FleetNames) -> None:
    """local.queues pairs each source with its DLQ exactly as FleetNames.queues() does."""
    (queues,) = tf_config.locals["queues"]
    pairs = {tf_config.render(q[0]["name"]): tf_config.render(q[0]["dlq_name"]) for q in queues.values()}
    assert pairs == names.queues()
    assert tf_config.resource("aws_sqs_queue", "source")["name"] == "${each.value.name}"
    assert tf_config.resource("aws_sqs_queue", "dlq")["name"] == "${each.value.dlq_name}"


def test_log_group_names_are_the_ones_common_names_derives(tf_config, names: FleetNames) -> None:
    """JOB_LOG_GROUP and the awslogs driver both write to these groups."""
    (log_groups,) = tf_config.locals["log_group_names"]
    rendered = {key: tf_config.render(template) for key, template in log_groups.items()}
    assert rendered == {
        "main_job": names.main_job_log_group,
        "background_job": names.background_job_log_group,
    }
    assert tf_config.resource("aws_cloudwatch_log_group", "this")["name"] == "${local.log_group_names[each.key]}"
    background = _environment(tf_config, BACKGROUND_JOB_SERVICE)
    assert background[settings.ENV_JOB_LOG_GROUP] == "${local.log_group_names.background_job}"


def test_service_names_match_common_names(tf_config) -> None:
    """The ECS service names are also the Service dimension of the EMF metrics."""
    assert tf_config.locals["main_job_service"] == MAIN_JOB_SERVICE
    assert tf_config.locals["background_job_service"] == BACKGROUND_JOB_SERVICE
    assert tf_config.resource("aws_ecs_service", "this")["name"] == "${each.value.service}"


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_task_environment_sets_every_relevant_worker_variable(tf_config, service: str) -> None:
    """Required variables are present, unknown names are absent, nothing relevant is left to chance."""
    environment = _environment(tf_config, service)
    assert set(REQUIRED_ENV[service]) <= set(environment)
    assert set(environment) - ALL_WORKER_ENV == {"AWS_REGION"}
    assert set(environment) == (ALL_WORKER_ENV - NOT_FOR[service]) | {"AWS_REGION"}


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_queue_url_variables_point_at_the_queues_they_name(tf_config, service: str) -> None:
    """TRIGGER_DLQ_URL must be the trigger DLQ's URL, not the trigger queue's."""
    expected = {
        settings.ENV_TRIGGER_QUEUE_URL: '${aws_sqs_queue.source["trigger"].url}',
        settings.ENV_TRIGGER_DLQ_URL: '${aws_sqs_queue.dlq["trigger"].url}',
        settings.ENV_BACKGROUND_QUEUE_URL: '${aws_sqs_queue.source["background"].url}',
        settings.ENV_BACKGROUND_DLQ_URL: '${aws_sqs_queue.dlq["background"].url}',
    }
    environment = _environment(tf_config, service)
    for name, reference in expected.items():
        if name in environment:
            assert environment[name].replace("'", '"') == reference, name


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_worker_visibility_timeout_is_the_consumed_queues_timeout(tf_config, service: str) -> None:
    """The worker's backoff arithmetic assumes the queue's real visibility timeout."""
    (queues,) = tf_config.locals["queues"]
    queue_setting = queues[CONSUMED_QUEUE[service]][0]["visibility_timeout_seconds"]
    assert _environment(tf_config, service)[settings.ENV_VISIBILITY_TIMEOUT_SECONDS] == queue_setting
    assert tf_config.resource("aws_sqs_queue", "source")["visibility_timeout_seconds"] == (
        "${each.value.visibility_timeout_seconds}"
    )


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_worker_max_receive_count_is_the_redrive_max_receive_count(tf_config, service: str) -> None:
    """The worker knows a message's last attempt only if it uses the same count as the redrive policy."""
    assert _environment(tf_config, service)[settings.ENV_MAX_RECEIVE_COUNT] == "${var.max_receive_count}"
    redrive = str(tf_config.resource("aws_sqs_queue", "source")["redrive_policy"])
    assert re.search(r"maxReceiveCount\W+(?:\$\{)?var\.max_receive_count\b", redrive)


def test_queues_long_poll_for_as_long_as_the_workers_wait(tf_config) -> None:
    """receive_wait_time_seconds = 20 on the queues and RECEIVE_WAIT_SECONDS = 20 in both tasks."""
    assert tf_config.locals["receive_wait_seconds"] == SETTINGS_DEFAULTS["receive_wait_seconds"] == 20
    assert tf_config.resource("aws_sqs_queue", "source")["receive_wait_time_seconds"] == "${local.receive_wait_seconds}"
    for service in ENVIRONMENT_LOCAL:
        assert _environment(tf_config, service)[settings.ENV_RECEIVE_WAIT_SECONDS] == "${local.receive_wait_seconds}"


def test_variable_defaults_equal_the_worker_defaults(tf_config) -> None:
    """Out of the box, Terraform and a worker started without the variable behave the same."""
    assert (
        tf_config.default("trigger_queue_visibility_timeout_seconds") == SETTINGS_DEFAULTS["visibility_timeout_seconds"]
    )
    assert (
        tf_config.default("background_queue_visibility_timeout_seconds")
        == SETTINGS_DEFAULTS["visibility_timeout_seconds"]
    )
    assert tf_config.default("max_receive_count") == SETTINGS_DEFAULTS["max_receive_count"]
    assert tf_config.default("max_attempts") == SETTINGS_DEFAULTS["max_attempts"]
    assert tf_config.default("shutdown_grace_seconds") == SETTINGS_DEFAULTS["shutdown_grace_seconds"]
    assert tf_config.default("retry_base_seconds") == SETTINGS_DEFAULTS["retry_base_seconds"]
    assert tf_config.default("retry_max_seconds") == SETTINGS_DEFAULTS["retry_max_seconds"]
    assert tf_config.default("log_level") == SETTINGS_DEFAULTS["log_level"]
    assert tf_config.default("logs_outage_cooldown_seconds") == SETTINGS_DEFAULTS["logs_outage_cooldown_seconds"]
    assert tf_config.default("metrics_namespace") == SETTINGS_DEFAULTS["metrics_namespace"]
    text = tf_config.raw_text["variables.tf"]
    for key in SERVICE_KEY.values():
        block = text[text.index(f'variable "{key}"') :]
        concurrency = re.search(r"concurrency\s*=\s*optional\(number,\s*(\d+)\)", block)
        assert concurrency is not None
        assert int(concurrency.group(1)) == SETTINGS_DEFAULTS["concurrency"]
    window = re.search(r"batch_window_seconds\s*=\s*optional\(number,\s*([\d.]+)\)", text)
    assert window is not None
    assert float(window.group(1)) == SETTINGS_DEFAULTS["batch_window_seconds"]


@pytest.mark.parametrize("service", [MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE])
def test_heartbeat_file_is_the_worker_default_inside_the_writable_tmp(tf_config, service: str) -> None:
    """common.health reads the same file the loop touches, on the only writable mount."""
    heartbeat = _environment(tf_config, service)[settings.ENV_HEARTBEAT_FILE]
    assert heartbeat == Settings.from_env(service, dict.fromkeys(REQUIRED_ENV[service], "x")).heartbeat_file
    assert heartbeat.startswith("/tmp/")


def test_stop_timeout_outlasts_the_long_poll_sigterm_does_not_interrupt(tf_config) -> None:
    """Grace 0 gave stopTimeout 5 s against a 20 s poll: idle workers were SIGKILLed (exit 137)."""
    conditions = [str(v["condition"]) for v in tf_config.variables["shutdown_grace_seconds"]["validation"]]
    (lower,) = [m.group(1) for c in conditions if (m := re.search(r"var\.shutdown_grace_seconds >= ([\w.]+)", c))]
    lowest = int(tf_config.resolve(f"${{{lower}}}") if lower.startswith("local.") else lower)
    poll = int(tf_config.locals["receive_wait_seconds"])
    assert 20 == poll
    assert lowest + 5 > poll  # stopTimeout = grace + 5 (local.stop_timeout_seconds, checked below)


def test_stop_timeout_is_the_grace_period_plus_five_and_fits_fargate(tf_config) -> None:
    """ECS must not SIGKILL a worker inside its grace period; Fargate caps stopTimeout at 120 s."""
    assert tf_config.locals["stop_timeout_seconds"] == "${var.shutdown_grace_seconds + 5}"
    conditions = [str(v["condition"]) for v in tf_config.variables["shutdown_grace_seconds"]["validation"]]
    assert any(f"<= {settings.MAX_SHUTDOWN_GRACE_SECONDS}" in condition for condition in conditions)
    assert settings.MAX_SHUTDOWN_GRACE_SECONDS + 5 <= 120
    definitions = str(tf_config.resource("aws_ecs_task_definition", "this")["container_definitions"])
    assert re.search(r"stopTimeout\W+(?:\$\{)?local\.stop_timeout_seconds\b", definitions)
