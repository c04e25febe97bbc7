"""The environment an ECS task of each service gets, rendered for a local deployment.

The names are read from ``tf/ecs.tf`` (``main_job_environment`` / ``background_job_environment``), so
a container started with this environment sees exactly the variables the task definition passes, plus
what ECS injects on Fargate. The values are Terraform's defaults (which equal the workers' own, a
``tests/tf`` contract) and the local resources' names. A name tf/ passes that this module cannot fill
is an error, not a silent omission.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE, FleetNames
from common.settings import REQUIRED_ENV, Settings
from fleet.local.provision import QueueUrls

ECS_TF: Final = Path(__file__).resolve().parents[2] / "tf" / "ecs.tf"
_LOCAL_NAME: Final = {MAIN_JOB_SERVICE: "main_job_environment", BACKGROUND_JOB_SERVICE: "background_job_environment"}
#: Settings attribute of each variable whose value is Terraform's default (= the worker's default).
_DEFAULTED: Final = {
    "WORKER_CONCURRENCY": "concurrency",
    "BATCH_WINDOW_SECONDS": "batch_window_seconds",
    "RECEIVE_WAIT_SECONDS": "receive_wait_seconds",
    "VISIBILITY_TIMEOUT_SECONDS": "visibility_timeout_seconds",
    "MAX_RECEIVE_COUNT": "max_receive_count",
    "MAX_ATTEMPTS": "max_attempts",
    "SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
    "RETRY_BASE_SECONDS": "retry_base_seconds",
    "RETRY_MAX_SECONDS": "retry_max_seconds",
    "LOG_LEVEL": "log_level",
    "METRICS_NAMESPACE": "metrics_namespace",
    "HEARTBEAT_FILE": "heartbeat_file",
    "LOGS_OUTAGE_COOLDOWN_SECONDS": "logs_outage_cooldown_seconds",
    "JOB_LEDGER_RETENTION_DAYS": "job_ledger_retention_days",
    "JOB_LEDGER_UNAVAILABLE": "job_ledger_unavailable",
    "JOB_TIMEOUT_SECONDS": "job_timeout_seconds",
    "MIN_LIVE_SLOTS_SHARE": "min_live_slots_share",
    "HUNG_SLOT_UNHEALTHY_SECONDS": "hung_slot_unhealthy_seconds",
    "HUNG_SLOT_EXIT_SECONDS": "hung_slot_exit_seconds",
}


class EnvironmentMismatch(RuntimeError):
    """tf/ecs.tf passes a variable this rendering does not know (or the reverse)."""


def names_in_tf(service: str, text: str | None = None) -> list[str]:
    """The variable names of ``service``'s environment map in tf/ecs.tf, in order."""
    source = ECS_TF.read_text(encoding="utf-8") if text is None else text
    block = re.search(rf"^  {_LOCAL_NAME[service]} = \{{\n(?P<body>.*?)^  \}}", source, re.MULTILINE | re.DOTALL)
    if block is None:
        raise EnvironmentMismatch(f"no {_LOCAL_NAME[service]} map in {ECS_TF}")
    return re.findall(r"^\s+([A-Z][A-Z0-9_]*)\s+=", block["body"], re.MULTILINE)


def _value(name: str, defaults: Settings, names: FleetNames, urls: QueueUrls, region: str) -> str:
    resources = {
        "AWS_REGION": region,
        "TRIGGER_QUEUE_URL": urls.trigger,
        "TRIGGER_DLQ_URL": urls.trigger_dlq,
        "BACKGROUND_QUEUE_URL": urls.background,
        "BACKGROUND_DLQ_URL": urls.background_dlq,
        "JOB_LOG_GROUP": names.background_job_log_group,
        "JOB_LEDGER_TABLE": names.job_ledger_table,
    }
    if name in resources:
        return resources[name]
    if name in _DEFAULTED:
        value = getattr(defaults, _DEFAULTED[name])
        return f"{value:g}" if isinstance(value, float) else str(value)
    raise EnvironmentMismatch(f"tf/ecs.tf passes {name}, which the local task environment cannot fill")


def task_environment(
    service: str, *, names: FleetNames, urls: QueueUrls, region: str, tf_text: str | None = None
) -> dict[str, str]:
    """Exactly the variables tf/ecs.tf gives ``service``, with local values."""
    defaults = Settings.from_env(service, dict.fromkeys(REQUIRED_ENV[service], "x"))
    return {name: _value(name, defaults, names, urls, region) for name in names_in_tf(service, tf_text)}


def ecs_injected(region: str, endpoint: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """What ECS adds on Fargate (AWS_DEFAULT_REGION, AWS_EXECUTION_ENV) and what stands in for the rest.

    On Fargate the task role's credentials come from AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; locally the
    emulator's dummy keys stand in, and AWS_ENDPOINT_URL points every client at the emulator.
    """
    return {
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
        "AWS_ENDPOINT_URL": endpoint,
        **credentials,
    }
