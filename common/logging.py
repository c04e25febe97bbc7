"""Structured JSON logs on stdout, which the ECS awslogs driver ships to the service's log group.

Context (message_id, job_id, correlation_id, receive_count) is bound per message with contextvars,
merged first and rendered last, so every line about a job carries its IDs. JSON rendering escapes
control characters, so hostile input cannot forge a second log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog


def configure_logging(*, service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging (boto, watchtower) to one JSON stream."""
    level_number = logging.getLevelNamesMapping()[level]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Third-party libraries log through stdlib; keep them quiet unless something is wrong, and never
    # at DEBUG, where botocore would print request signing details.
    logging.basicConfig(level=max(level_number, logging.WARNING), stream=stream or sys.stdout)
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
