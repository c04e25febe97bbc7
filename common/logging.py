"""Structured JSON logs on stdout, which the ECS awslogs driver ships to the service's log group.

Context (message_id, job_id, correlation_id, receive_count) is bound per message with contextvars,
merged first and rendered last, so every line about a job carries its IDs. ``service`` is added by a
processor rather than bound, so lines from every thread carry it. stdlib records (botocore, watchtower)
are rendered by the same processors, so every line on stdout is one JSON object. JSON rendering escapes
control characters, so hostile input cannot forge a second log line.

Writing a line is a side channel (common/side_channels.py): a failed write (a broken pipe, a full disk)
is counted and swallowed, never raised into the code that logged.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from common import side_channels

_WRITE_LOCK = threading.Lock()
_handler: logging.Handler | None = None


def write_line(stream: TextIO, line: str, channel: side_channels.SideChannel = side_channels.STDOUT) -> None:
    """Write one line and flush it; a failure is counted on ``channel`` and never raised."""
    try:
        with _WRITE_LOCK:
            stream.write(line + "\n")
            stream.flush()
    except (OSError, ValueError) as error:  # ValueError: the stream was closed
        channel.failed(error)
        return
    channel.succeeded()


class LineLogger:
    """structlog's final logger: one rendered line per call through :func:`write_line`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def msg(self, message: str) -> None:
        write_line(self._stream, message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


def _guarded(level_number: int) -> type[Any]:
    """A filtering bound logger whose processors, too, can never raise into the caller."""
    base: type[Any] = structlog.make_filtering_bound_logger(level_number)

    class Guarded(base):  # type: ignore[misc]
        def _proxy_to_logger(self, method_name: str, event: str | None = None, **event_kw: Any) -> Any:  # noqa: ANN401
            try:
                return super()._proxy_to_logger(method_name, event, **event_kw)
            except Exception as error:  # noqa: BLE001 - logging is a side channel (common/side_channels.py)
                side_channels.STDOUT.failed(error)
                return None

    return Guarded


class _LineHandler(logging.Handler):
    """stdlib records rendered as JSON by structlog's formatter and written like every other line."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        super().__init__()
        self._stream = stream
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception as error:  # noqa: BLE001 - a bad record must not reach the code that logged it
            side_channels.STDOUT.failed(error)
            return
        write_line(self._stream, line)


def configure_logging(*, service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging (boto, watchtower) to one JSON stream."""
    global _handler  # noqa: PLW0603 - one process-wide handler, replaced on reconfiguration
    level_number = logging.getLevelNamesMapping()[level]
    target = stream or sys.stdout

    def add_service(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:  # noqa: ANN401
        event.setdefault("service", service)
        return event

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    # Compact JSON: CloudWatch Logs bills every byte, and ", " / ": " were about 8% of a line (issue 28).
    render = structlog.processors.JSONRenderer(separators=(",", ":"))
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, render],
        wrapper_class=_guarded(level_number),
        logger_factory=lambda *_args: LineLogger(target),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            render,
        ],
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _LineHandler(target, formatter)
    root.addHandler(_handler)
    # Third-party libraries log through stdlib; keep them quiet unless something is wrong, and never
    # at DEBUG, where botocore would print request signing details.
    root.setLevel(max(level_number, logging.WARNING))
    logging.captureWarnings(True)


def get_logger(name: str) -> Any:  # noqa: ANN401 - structlog's bound logger type is deliberately loose
    return structlog.get_logger(name)


@contextmanager
def bound_context(**fields: Any) -> Iterator[None]:  # noqa: ANN401
    """Bind ``fields`` to every log line in this thread for the duration of the block."""
    tokens = structlog.contextvars.bind_contextvars(**fields)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
