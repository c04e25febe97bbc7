"""Wiring shared by both services: one consumer assembled from settings, and the process entry point."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from common import aws, metrics, side_channels
from common.health import Liveness
from common.job_log.shipper import close_shared_shipper
from common.logging import configure_logging, get_logger
from common.settings import ConfigError, Settings
from common.sqs.backoff import Backoff
from common.sqs.consumer import Consumer
from common.sqs.dispatch import Dispatcher
from common.sqs.hooks import DeliveryHooks
from common.sqs.in_flight import InFlight
from common.sqs.settlement import Settler
from common.sqs.shutdown import Shutdown, install_signal_handlers

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

EXIT_CONFIG_ERROR = 78  # EX_CONFIG from sysexits.h: ECS shows it, and retrying will not help

ConsumerFactory = Callable[[Settings, Shutdown], Consumer]


def build_consumer(
    *,
    settings: Settings,
    sqs: SQSClient,
    queue_url: str,
    dlq_url: str,
    shutdown: Shutdown,
    make_dispatcher: Callable[[], Dispatcher],
    hooks: DeliveryHooks | None = None,
) -> Consumer:
    in_flight = InFlight(settings.visibility_timeout_seconds)
    settler = Settler(
        sqs=sqs,
        queue_url=queue_url,
        dlq_url=dlq_url,
        in_flight=in_flight,
        backoff=Backoff(settings.retry_base_seconds, settings.retry_max_seconds),
        max_receive_count=settings.max_receive_count,
        max_attempts=settings.max_attempts,
        hooks=hooks,
    )
    return Consumer(
        sqs=sqs,
        queue_url=queue_url,
        dispatcher=make_dispatcher(),
        settler=settler,
        in_flight=in_flight,
        shutdown=shutdown,
        liveness=Liveness(settings.heartbeat_file),
        receive_wait_seconds=settings.receive_wait_seconds,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
        hooks=hooks,
    )


def run_service(service: str, make_consumer: ConsumerFactory) -> int:
    """Process entry point: settings, logging, signals, then the loop. Returns the exit status."""
    try:
        settings = Settings.from_env(service)
        aws.region()  # checked here so that a missing region exits 78, not with a NoRegionError traceback
    except ConfigError as error:
        return _config_invalid(service, error)
    configure_logging(service=service, level=settings.log_level)
    shutdown = Shutdown()
    install_signal_handlers(shutdown)
    get_logger(__name__).info(
        "worker.configured",
        concurrency=settings.concurrency,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        max_receive_count=settings.max_receive_count,
        max_attempts=settings.max_attempts,
        shutdown_grace_seconds=settings.shutdown_grace_seconds,
    )
    try:
        consumer = make_consumer(settings, shutdown)
    except ConfigError as error:  # found while assembling: a job type's own time limit, say
        return _config_invalid(service, error)
    try:
        consumer.run()
    finally:
        close_shared_shipper()  # job log events still held go to stdout, never down with the process
        metrics.flush_all()  # and so do the metrics the emitters aggregate
        _quiet_stdout_if_broken()
    if consumer.threads_left_behind():
        _exit_leaving_threads_behind(shutdown.exit_status)
    return shutdown.exit_status


def _config_invalid(service: str, error: ConfigError) -> int:
    """One JSON line by hand: logging may not be configured yet, and may be what is misconfigured."""
    print(json.dumps({"event": "config.invalid", "service": service, "error": str(error)}), file=sys.stderr)  # noqa: T201
    return EXIT_CONFIG_ERROR


def _exit_leaving_threads_behind(status: int) -> None:
    """Exit now, without joining job threads (what a normal interpreter exit does with a pool's threads):
    jobs that overran the grace period had their messages released, and jobs that ran past their time
    limit were settled as timed out, so their threads hold nothing and may never return."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            continue
    os._exit(status)


def _quiet_stdout_if_broken() -> None:
    """A broken stdout must not turn a clean exit into Python's exit status 120 at its final flush."""
    if side_channels.STDOUT.failures == 0:
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            return
