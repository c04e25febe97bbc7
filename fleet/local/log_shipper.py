"""Plays the awslogs driver locally: ships each worker's stdout to its service's log group.

One stream per process (``<service>/<service>/<instance>``, the shape awslogs gives ECS tasks), so that
``aws logs tail /ecs/<prefix>/main-job --follow`` works against the emulator exactly as on AWS.

Each stream is a watchtower handler: one long-lived stream fed line by line and shipped in batches once
a second is what watchtower's handler is made for. (The workers' per-job streams are not: watchtower
costs a thread and a queue per stream, which is why ``common.job_log`` ships those itself.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import IO, TYPE_CHECKING, TextIO

import watchtower

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

FLUSH_INTERVAL_SECONDS = 1
#: Shown by --quiet however routine: when a worker starts, is asked to stop, gives up jobs, and stops.
_LIFECYCLE_EVENTS = frozenset(
    {"worker.started", "worker.shutdown_requested", "worker.jobs_abandoned", "message.released", "worker.stopped"}
)
_QUIET_LEVELS = frozenset({"warning", "error", "critical"})


def quiet_summary(line: str) -> str | None:
    """What --quiet shows of a worker's line: one short line for lifecycle events, warnings and errors.

    EMF metric lines and routine events are hidden (they still reach the log group); a line that is not
    JSON (a traceback, a crash before logging was set up) is shown as it is, since it is never routine.
    """
    try:
        event = json.loads(line)
    except ValueError:
        return line
    if not isinstance(event, dict) or "_aws" in event:
        return None
    name, level = str(event.get("event", "")), str(event.get("level", ""))
    if name not in _LIFECYCLE_EVENTS and level not in _QUIET_LEVELS:
        return None
    details = " ".join(f"{key}={event[key]}" for key in ("job_id", "reason", "error") if key in event)
    return f"{level or 'info'} {name} {details}".rstrip()


class LogShipper:
    """Echoes lines from many processes to the console and ships each process's lines to its own stream."""

    def __init__(self, logs: CloudWatchLogsClient, echo: TextIO | None, *, quiet: bool = False) -> None:
        self._logs = logs
        self._echo = echo
        self._quiet = quiet
        self._handlers: list[watchtower.CloudWatchLogHandler] = []
        self._lock = threading.Lock()
        self._echo_lock = threading.Lock()  # print() writes text and newline apart: lines would interleave

    def stop(self) -> None:
        """Ship what is buffered and stop every stream's sender (watchtower's close flushes first)."""
        with self._lock:
            handlers, self._handlers = self._handlers, []
        for handler in handlers:
            handler.close()  # type: ignore[no-untyped-call]  # watchtower is untyped

    def follow(self, pipe: IO[str], *, group: str, stream: str, label: str) -> threading.Thread:
        """Read ``pipe`` until EOF in a thread of its own, echoing and shipping each line."""
        # Created now, not on the first put, so that `aws logs tail` finds the stream as soon as the worker runs.
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        handler = watchtower.CloudWatchLogHandler(
            log_group_name=group,
            log_stream_name=stream,
            boto3_client=self._logs,
            send_interval=FLUSH_INTERVAL_SECONDS,
            create_log_group=False,
        )
        with self._lock:
            self._handlers.append(handler)

        def pump() -> None:
            for line in pipe:
                text = line.rstrip("\n")
                if not text:
                    continue
                shown = quiet_summary(text) if self._quiet else text
                if self._echo is not None and shown is not None:
                    self._echo_line(f"[{label}] {shown}\n")
                handler.handle(logging.makeLogRecord({"name": label, "msg": text, "created": time.time()}))

        thread = threading.Thread(target=pump, name=f"pump-{label}", daemon=True)
        thread.start()
        return thread

    def _echo_line(self, line: str) -> None:
        """One write of one whole line, so two workers' output never shares a console line."""
        assert self._echo is not None  # noqa: S101 - only called when echoing
        with self._echo_lock:
            self._echo.write(line)
            self._echo.flush()
