"""Logs: one JSON object per line from every thread and from stdlib, and a failing stdout never raises."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog

from common import side_channels
from common.logging import configure_logging, get_logger


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    captured = io.StringIO()
    configure_logging(service="test-service", stream=captured)
    yield captured
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _restore_root_handlers() -> Iterator[None]:
    """configure_logging installs a root handler on the test's stream; take it away afterwards."""
    before = list(logging.getLogger().handlers)
    yield
    for handler in logging.getLogger().handlers:
        if handler not in before:
            logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_from_other_threads_carry_the_service(stream: io.StringIO) -> None:
    """A job thread's line names its service, like the main thread's."""
    thread = threading.Thread(target=lambda: get_logger("t").info("from.thread"))
    thread.start()
    thread.join()

    [line] = _lines(stream)
    assert ("from.thread", "test-service") == (line["event"], line["service"])


def test_stdlib_log_lines_are_json(stream: io.StringIO) -> None:
    """botocore or watchtower warnings come out as JSON objects with the service and level."""
    logging.getLogger("botocore.test").warning("connection pool is full")

    [line] = _lines(stream)
    assert ("connection pool is full", "warning", "test-service") == (line["event"], line["level"], line["service"])


def test_a_broken_stdout_is_counted_and_never_raises() -> None:
    """Writing to a closed stream fails the side channel, not the caller."""
    closed = io.StringIO()
    closed.close()
    configure_logging(service="test-service", stream=closed)
    before = side_channels.STDOUT.failures
    try:
        get_logger("t").info("lost")
    finally:
        structlog.reset_defaults()

    assert before + 1 == side_channels.STDOUT.failures


def test_lines_are_compact_json_from_structlog_and_stdlib(stream: io.StringIO) -> None:
    """CloudWatch Logs bills every byte: no ", " or ": " separators (about 8% of a line, issue 28)."""
    get_logger("test").info("compact.line", job_id="01ABC", count=2)
    logging.getLogger("botocore").warning("from stdlib")

    lines = stream.getvalue().splitlines()
    assert 2 == len(lines)
    assert [] == [line for line in lines if '", "' in line or '": ' in line]
