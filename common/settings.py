"""Worker settings, read from the environment once at start-up.

Library classes never read the environment: the entry points call :meth:`Settings.from_env` and pass
explicit values down. A missing or malformed variable is reported by its name, before any AWS call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from common.ledger.schema import DEFAULT_RETENTION_DAYS
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE

T = TypeVar("T")

#: Every variable the workers read. Terraform's task definitions set these names (checked by a test).
ENV_TRIGGER_QUEUE_URL: Final = "TRIGGER_QUEUE_URL"
ENV_TRIGGER_DLQ_URL: Final = "TRIGGER_DLQ_URL"
ENV_BACKGROUND_QUEUE_URL: Final = "BACKGROUND_QUEUE_URL"
ENV_BACKGROUND_DLQ_URL: Final = "BACKGROUND_DLQ_URL"
ENV_JOB_LOG_GROUP: Final = "JOB_LOG_GROUP"
ENV_WORKER_CONCURRENCY: Final = "WORKER_CONCURRENCY"
ENV_RECEIVE_WAIT_SECONDS: Final = "RECEIVE_WAIT_SECONDS"
ENV_BATCH_WINDOW_SECONDS: Final = "BATCH_WINDOW_SECONDS"
ENV_VISIBILITY_TIMEOUT_SECONDS: Final = "VISIBILITY_TIMEOUT_SECONDS"
ENV_MAX_RECEIVE_COUNT: Final = "MAX_RECEIVE_COUNT"
ENV_MAX_ATTEMPTS: Final = "MAX_ATTEMPTS"
ENV_SHUTDOWN_GRACE_SECONDS: Final = "SHUTDOWN_GRACE_SECONDS"
ENV_RETRY_BASE_SECONDS: Final = "RETRY_BASE_SECONDS"
ENV_RETRY_MAX_SECONDS: Final = "RETRY_MAX_SECONDS"
ENV_LOG_LEVEL: Final = "LOG_LEVEL"
ENV_METRICS_NAMESPACE: Final = "METRICS_NAMESPACE"
ENV_HEARTBEAT_FILE: Final = "HEARTBEAT_FILE"
ENV_LOGS_OUTAGE_COOLDOWN_SECONDS: Final = "LOGS_OUTAGE_COOLDOWN_SECONDS"
ENV_JOB_LEDGER_TABLE: Final = "JOB_LEDGER_TABLE"
ENV_JOB_LEDGER_RETENTION_DAYS: Final = "JOB_LEDGER_RETENTION_DAYS"
ENV_JOB_LEDGER_UNAVAILABLE: Final = "JOB_LEDGER_UNAVAILABLE"
ENV_JOB_TIMEOUT_SECONDS: Final = "JOB_TIMEOUT_SECONDS"
ENV_MIN_LIVE_SLOTS_SHARE: Final = "MIN_LIVE_SLOTS_SHARE"
ENV_HUNG_SLOT_UNHEALTHY_SECONDS: Final = "HUNG_SLOT_UNHEALTHY_SECONDS"
ENV_HUNG_SLOT_EXIT_SECONDS: Final = "HUNG_SLOT_EXIT_SECONDS"

#: Required per service; everything else has a default.
REQUIRED_ENV: Final[Mapping[str, tuple[str, ...]]] = {
    MAIN_JOB_SERVICE: (ENV_TRIGGER_QUEUE_URL, ENV_TRIGGER_DLQ_URL, ENV_BACKGROUND_QUEUE_URL),
    BACKGROUND_JOB_SERVICE: (ENV_BACKGROUND_QUEUE_URL, ENV_BACKGROUND_DLQ_URL, ENV_JOB_LOG_GROUP),
}

#: Fargate allows a stopTimeout of at most 120 s; the grace period must fit inside it.
MAX_SHUTDOWN_GRACE_SECONDS: Final = 115
#: One full SQS receive batch: at 10 a busy pool receives and deletes ten at a time (docs/performance.md).
DEFAULT_WORKER_CONCURRENCY: Final = 10
#: How long a busy background pool waits between job completions for a full receive batch (common/sqs/dispatch.py).
DEFAULT_BATCH_WINDOW_SECONDS: Final = 0.1
MAX_BATCH_WINDOW_SECONDS: Final = 1.0
#: After a failed CloudWatch Logs call, how long jobs write their events to stdout before probing again.
DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS: Final = 30.0
#: Runs a job may start before the worker gives up and moves its message to the DLQ with the reason. With
#: the job ledger on, runs are its ``attempts`` (a release, a busy copy or a stale buffer costs a receive,
#: not an attempt); with it off, the receive count stands in.
DEFAULT_MAX_ATTEMPTS: Final = 5
#: The queues' redrive maxReceiveCount (and MAX_RECEIVE_COUNT): a high backstop for poison messages only,
#: well above MAX_ATTEMPTS so that receives which started no run never dead-letter a job.
DEFAULT_MAX_RECEIVE_COUNT: Final = 20
#: SQS caps a message's visibility timeout at 12 hours.
MAX_VISIBILITY_SECONDS: Final = 43_200
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
#: A job's time limit unless its job type declares its own (``TIMEOUT_SECONDS`` beside its ``run``).
DEFAULT_JOB_TIMEOUT_SECONDS: Final = 3600.0
#: A worker exits to be replaced once fewer than this share of its slots are live (common/sqs/time_limit.py).
DEFAULT_MIN_LIVE_SLOTS_SHARE: Final = 0.5
#: Its health check fails once a timed-out job has held its slot this long past the deadline...
DEFAULT_HUNG_SLOT_UNHEALTHY_SECONDS: Final = 60.0
#: ...and it exits once one has held it this long.
DEFAULT_HUNG_SLOT_EXIT_SECONDS: Final = 900.0
#: What a background worker does when the job ledger cannot be reached to claim a job: ``retry`` fails
#: the attempt and retries it later through visibility (the safe default: nothing runs unclaimed);
#: ``run`` runs it unclaimed (at-least-once, as without a ledger) so an outage does not stop the fleet.
LEDGER_UNAVAILABLE_POLICIES: Final = ("retry", "run")


class ConfigError(ValueError):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a worker process needs to know, resolved once."""

    service: str
    trigger_queue_url: str = ""
    trigger_dlq_url: str = ""
    background_queue_url: str = ""
    background_dlq_url: str = ""
    job_log_group: str = ""
    concurrency: int = DEFAULT_WORKER_CONCURRENCY
    receive_wait_seconds: int = 20
    batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS
    visibility_timeout_seconds: int = 60
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    shutdown_grace_seconds: float = 25.0
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 900.0
    log_level: str = "INFO"
    metrics_namespace: str = "MessageDrivenFleet"
    heartbeat_file: str = ""
    logs_outage_cooldown_seconds: float = DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS
    #: Empty turns the job ledger off (common/ledger/schema.py).
    job_ledger_table: str = ""
    job_ledger_retention_days: int = DEFAULT_RETENTION_DAYS
    job_ledger_unavailable: str = "retry"
    job_timeout_seconds: float = DEFAULT_JOB_TIMEOUT_SECONDS
    min_live_slots_share: float = DEFAULT_MIN_LIVE_SLOTS_SHARE
    hung_slot_unhealthy_seconds: float = DEFAULT_HUNG_SLOT_UNHEALTHY_SECONDS
    hung_slot_exit_seconds: float = DEFAULT_HUNG_SLOT_EXIT_SECONDS

    @property
    def max_job_timeout_seconds(self) -> float:
        """The longest limit the visibility heartbeat can cover: SQS keeps a message invisible at most 12 hours
        from its receive, and a job starts up to one visibility timeout after that (a buffered receive)."""
        return float(MAX_VISIBILITY_SECONDS - self.visibility_timeout_seconds)

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable for ``service``; raise :class:`ConfigError` naming a bad one."""
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_ENV[service] if not env.get(name, "").strip()]
        if missing:
            raise ConfigError(f"missing required environment variable(s): {', '.join(missing)}")
        reader = _EnvReader(env)
        settings = cls(
            service=service,
            trigger_queue_url=reader.text(ENV_TRIGGER_QUEUE_URL, ""),
            trigger_dlq_url=reader.text(ENV_TRIGGER_DLQ_URL, ""),
            background_queue_url=reader.text(ENV_BACKGROUND_QUEUE_URL, ""),
            background_dlq_url=reader.text(ENV_BACKGROUND_DLQ_URL, ""),
            job_log_group=reader.text(ENV_JOB_LOG_GROUP, ""),
            concurrency=reader.number(ENV_WORKER_CONCURRENCY, int, DEFAULT_WORKER_CONCURRENCY, 1, 64),
            receive_wait_seconds=reader.number(ENV_RECEIVE_WAIT_SECONDS, int, 20, 0, 20),
            batch_window_seconds=reader.number(
                ENV_BATCH_WINDOW_SECONDS, float, DEFAULT_BATCH_WINDOW_SECONDS, 0.0, MAX_BATCH_WINDOW_SECONDS
            ),
            visibility_timeout_seconds=reader.number(
                ENV_VISIBILITY_TIMEOUT_SECONDS, int, 60, 10, MAX_VISIBILITY_SECONDS
            ),
            max_receive_count=reader.number(ENV_MAX_RECEIVE_COUNT, int, DEFAULT_MAX_RECEIVE_COUNT, 1, 1000),
            max_attempts=reader.number(ENV_MAX_ATTEMPTS, int, DEFAULT_MAX_ATTEMPTS, 1, 1000),
            shutdown_grace_seconds=reader.number(
                ENV_SHUTDOWN_GRACE_SECONDS, float, 25.0, 0.0, MAX_SHUTDOWN_GRACE_SECONDS
            ),
            retry_base_seconds=reader.number(ENV_RETRY_BASE_SECONDS, float, 5.0, 0.0, MAX_VISIBILITY_SECONDS),
            retry_max_seconds=reader.number(ENV_RETRY_MAX_SECONDS, float, 900.0, 0.0, MAX_VISIBILITY_SECONDS),
            log_level=reader.choice(ENV_LOG_LEVEL, "INFO", LOG_LEVELS),
            metrics_namespace=reader.text(ENV_METRICS_NAMESPACE, "MessageDrivenFleet"),
            # /tmp is the one writable path in the read-only container.
            heartbeat_file=reader.text(ENV_HEARTBEAT_FILE, f"/tmp/{service}.heartbeat"),  # noqa: S108
            logs_outage_cooldown_seconds=reader.number(
                ENV_LOGS_OUTAGE_COOLDOWN_SECONDS, float, DEFAULT_LOGS_OUTAGE_COOLDOWN_SECONDS, 0.0, 3600.0
            ),
            job_ledger_table=reader.text(ENV_JOB_LEDGER_TABLE, ""),
            job_ledger_retention_days=reader.number(
                ENV_JOB_LEDGER_RETENTION_DAYS, int, DEFAULT_RETENTION_DAYS, 1, 3650
            ),
            job_ledger_unavailable=reader.choice(ENV_JOB_LEDGER_UNAVAILABLE, "retry", LEDGER_UNAVAILABLE_POLICIES),
            job_timeout_seconds=reader.number(
                ENV_JOB_TIMEOUT_SECONDS, float, DEFAULT_JOB_TIMEOUT_SECONDS, 0.001, MAX_VISIBILITY_SECONDS
            ),
            min_live_slots_share=reader.number(ENV_MIN_LIVE_SLOTS_SHARE, float, DEFAULT_MIN_LIVE_SLOTS_SHARE, 0.0, 1.0),
            hung_slot_unhealthy_seconds=reader.number(
                ENV_HUNG_SLOT_UNHEALTHY_SECONDS, float, DEFAULT_HUNG_SLOT_UNHEALTHY_SECONDS, 0.0, MAX_VISIBILITY_SECONDS
            ),
            hung_slot_exit_seconds=reader.number(
                ENV_HUNG_SLOT_EXIT_SECONDS, float, DEFAULT_HUNG_SLOT_EXIT_SECONDS, 0.0, MAX_VISIBILITY_SECONDS
            ),
        )
        check_job_timeout(settings, ENV_JOB_TIMEOUT_SECONDS, settings.job_timeout_seconds)
        return settings


def check_job_timeout(settings: Settings, name: str, seconds: float) -> None:
    """A time limit must be positive and short enough for the heartbeat to keep the job's message invisible."""
    if not 0 < seconds <= settings.max_job_timeout_seconds:
        raise ConfigError(
            f"{name}={seconds:g} must be above 0 and at most {settings.max_job_timeout_seconds:g} "
            f"(SQS's 12-hour visibility cap less VISIBILITY_TIMEOUT_SECONDS)"
        )


@dataclass(frozen=True, slots=True)
class _EnvReader:
    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, "").strip() or default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """Match case-insensitively and return the allowed spelling (LOG_LEVEL=info is INFO)."""
        value = self.text(name, default)
        for spelling in allowed:
            if value.casefold() == spelling.casefold():
                return spelling
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")

    def number(self, name: str, kind: Callable[[str], T], default: T, low: float, high: float) -> T:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a valid {getattr(kind, '__name__', 'number')}") from None
        if not low <= value <= high:  # type: ignore[operator]
            raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
        return value
