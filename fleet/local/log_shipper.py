"""Plays the awslogs driver locally: ships each worker's stdout to its service's log group.

One stream per process (``<service>/<service>/<instance>``, the shape awslogs gives ECS tasks), so that
``aws logs tail /ecs/<prefix>/main-job --follow`` works against the emulator exactly as on AWS.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

FLUSH_INTERVAL_SECONDS = 1.0
_MAX_EVENTS_PER_PUT = 5_000


@dataclass(slots=True)
class _Stream:
    group: str
    name: str
    events: list[InputLogEventTypeDef] = field(default_factory=list)


class LogShipper:
    """Collects lines from many processes and ships them in batches once a second."""

    def __init__(self, logs: CloudWatchLogsClient, echo: TextIO | None) -> None:
        self._logs = logs
        self._echo = echo
        self._streams: list[_Stream] = []
        self._lock = threading.Lock()
        self._echo_lock = threading.Lock()  # print() writes text and newline apart: lines would interleave
        self._stopped = threading.Event()
        self._flusher = threading.Thread(target=self._run, name="log-shipper", daemon=True)

    def start(self) -> None:
        self._flusher.start()

    def stop(self) -> None:
        self._stopped.set()
        self._flusher.join(timeout=10)
        self._flush_safely()

    def follow(self, pipe: IO[str], *, group: str, stream: str, label: str) -> threading.Thread:
        """Read ``pipe`` until EOF in a thread of its own, echoing and buffering each line."""
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        target = _Stream(group, stream)
        with self._lock:
            self._streams.append(target)

        def pump() -> None:
            for line in pipe:
                text = line.rstrip("\n")
                if not text:
                    continue
                if self._echo is not None:
                    self._echo_line(f"[{label}] {text}\n")
                with self._lock:
                    target.events.append({"timestamp": int(time.time() * 1000), "message": text})

        thread = threading.Thread(target=pump, name=f"pump-{label}", daemon=True)
        thread.start()
        return thread

    def _echo_line(self, line: str) -> None:
        """One write of one whole line, so two workers' output never shares a console line."""
        assert self._echo is not None  # noqa: S101 - only called when echoing
        with self._echo_lock:
            self._echo.write(line)
            self._echo.flush()

    def flush(self) -> None:
        with self._lock:
            batches = [(s, s.events[:_MAX_EVENTS_PER_PUT]) for s in self._streams if s.events]
            for stream, events in batches:
                del stream.events[: len(events)]
        for stream, events in batches:
            self._logs.put_log_events(logGroupName=stream.group, logStreamName=stream.name, logEvents=events)

    def _run(self) -> None:
        while not self._stopped.wait(FLUSH_INTERVAL_SECONDS):
            self._flush_safely()

    def _flush_safely(self) -> None:
        try:
            self.flush()
        except Exception as error:  # noqa: BLE001 - the emulator going away must not kill the fleet
            print(f"[fleet] log shipping failed: {error}", file=sys.stderr)
