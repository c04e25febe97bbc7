"""Settings are read once from the environment, and a bad variable is reported by name."""

from __future__ import annotations

import pytest

from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from common.settings import ConfigError, Settings

MAIN_ENV = {
    "TRIGGER_QUEUE_URL": "https://sqs.example/1/t",
    "TRIGGER_DLQ_URL": "https://sqs.example/1/t-dlq",
    "BACKGROUND_QUEUE_URL": "https://sqs.example/1/b",
}


def test_defaults_fit_fargate_and_long_polling() -> None:
    """With only the required variables set, the defaults long-poll and fit Fargate's stop timeout."""
    settings = Settings.from_env(MAIN_JOB_SERVICE, MAIN_ENV)

    assert 20 == settings.receive_wait_seconds
    assert 25.0 == settings.shutdown_grace_seconds
    assert 60 == settings.visibility_timeout_seconds
    assert "/tmp/main-job.heartbeat" == settings.heartbeat_file


def test_attempts_decide_the_give_up_and_the_receive_count_is_a_high_backstop() -> None:
    """MAX_ATTEMPTS defaults to 5 runs; MAX_RECEIVE_COUNT (the redrive backstop) to 20 receives."""
    settings = Settings.from_env(MAIN_JOB_SERVICE, MAIN_ENV)

    assert (5, 20) == (settings.max_attempts, settings.max_receive_count)
    assert 3 == Settings.from_env(MAIN_JOB_SERVICE, {**MAIN_ENV, "MAX_ATTEMPTS": "3"}).max_attempts


def test_batch_window_can_be_turned_off() -> None:
    """BATCH_WINDOW_SECONDS=0 makes a busy pool receive on its first free slot; unset, it waits 100 ms."""
    assert 0.1 == Settings.from_env(MAIN_JOB_SERVICE, MAIN_ENV).batch_window_seconds
    assert 0.0 == Settings.from_env(MAIN_JOB_SERVICE, {**MAIN_ENV, "BATCH_WINDOW_SECONDS": "0"}).batch_window_seconds


def test_missing_required_variables_are_named() -> None:
    """The error names every missing variable, so one restart fixes them all."""
    with pytest.raises(ConfigError, match="BACKGROUND_DLQ_URL, JOB_LOG_GROUP"):
        Settings.from_env(BACKGROUND_JOB_SERVICE, {"BACKGROUND_QUEUE_URL": "https://sqs.example/1/b"})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WORKER_CONCURRENCY", "many", "WORKER_CONCURRENCY='many' is not a valid int"),
        ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY='0' must be between 1 and 64"),
        ("SHUTDOWN_GRACE_SECONDS", "300", "SHUTDOWN_GRACE_SECONDS='300' must be between 0 and 115"),
        ("RECEIVE_WAIT_SECONDS", "21", "RECEIVE_WAIT_SECONDS='21' must be between 0 and 20"),
        ("BATCH_WINDOW_SECONDS", "2", "BATCH_WINDOW_SECONDS='2' must be between 0 and 1"),
        ("LOGS_OUTAGE_COOLDOWN_SECONDS", "-1", "LOGS_OUTAGE_COOLDOWN_SECONDS='-1' must be between 0 and 3600"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL='chatty' is not one of"),
        ("MAX_ATTEMPTS", "0", "MAX_ATTEMPTS='0' must be between 1 and 1000"),
        ("MAX_ATTEMPTS", "five", "MAX_ATTEMPTS='five' is not a valid int"),
    ],
)
def test_malformed_variable_is_reported_by_name(name: str, value: str, message: str) -> None:
    """A malformed value stops start-up with the variable's name and the accepted range."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env(MAIN_JOB_SERVICE, {**MAIN_ENV, name: value})


@pytest.mark.parametrize(
    ("timeout", "visibility"), [("0", "60"), ("-1", "60"), ("43141", "60"), ("43000", "300"), ("an hour", "60")]
)
def test_a_job_time_limit_the_heartbeat_cannot_cover_is_refused_by_name(timeout: str, visibility: str) -> None:
    """JOB_TIMEOUT_SECONDS must be positive and end before SQS's 12-hour cap, less one visibility timeout."""
    env = {**MAIN_ENV, "JOB_TIMEOUT_SECONDS": timeout, "VISIBILITY_TIMEOUT_SECONDS": visibility}

    with pytest.raises(ConfigError, match="JOB_TIMEOUT_SECONDS"):
        Settings.from_env(MAIN_JOB_SERVICE, env)


def test_a_job_time_limit_up_to_the_cap_less_the_visibility_timeout_is_accepted() -> None:
    """43,140 s with a 60 s visibility timeout: the heartbeat can still keep the message invisible to the end."""
    env = {**MAIN_ENV, "JOB_TIMEOUT_SECONDS": "43140"}

    assert 43_140.0 == Settings.from_env(MAIN_JOB_SERVICE, env).job_timeout_seconds
    assert 3600.0 == Settings.from_env(MAIN_JOB_SERVICE, MAIN_ENV).job_timeout_seconds
