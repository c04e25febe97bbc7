"""The job log's side-channel boundary: where undelivered events go, and how the job log's own failures end.

A job log is a side channel: nothing in it may decide a message's fate (issue 16). Events CloudWatch Logs
did not take go to stdout (the container's stream, shipped by the awslogs driver) as
``job_log.undelivered`` warnings. Any failure inside the job log itself, including that stdout write
(a broken pipe), a log processor that raises, or the delivery-failure callback, is caught by a
:class:`Shield`, counted through the callback, and reported once per cause (where, and which exception)
on stderr, the channel most likely to still work; it never reaches the job or its settlement.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Final

import structlog

from common.job_log.events import LogEvent

DeliveryFailureCallback = Callable[[int], None]

#: The stderr line's event name, one per cause per process.
SIDE_CHANNEL_FAILED: Final = "job_log.side_channel_failed"

_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def write_undelivered(summary: str, *, job_id: str, stream: str, error: str, events: list[LogEvent]) -> None:
    """``summary`` (why) once, then each event as a ``job_log.undelivered`` warning carrying its JSON.

    Each line carries ``job_id`` at the top, as every service line about a job does: ``fleet job`` keeps
    the service lines whose ``job_id`` is the job's, so this is how it finds what missed the stream.
    """
    # A fresh logger each time: a module-level one may have cached an earlier configuration's output.
    logger = structlog.get_logger("common.job_log.log")
    logger.warning(summary, job_id=job_id, stream=stream, error=error, events=len(events))
    for event in events:
        logger.warning("job_log.undelivered", job_id=job_id, job_event=_standalone(event, job_id))


def _standalone(event: LogEvent, job_id: str) -> dict[str, object]:
    """The event with what its stream would have carried for it: the jobId (the stream's name, and only
    the first event has it) and its time (CloudWatch's event timestamp), so the line stands on its own."""
    document = json.loads(event.message)
    at = datetime.fromtimestamp(event.timestamp / 1000, UTC).isoformat(timespec="milliseconds")
    if not isinstance(document, dict):
        return {"jobId": job_id, "event": document, "timestamp": at}
    return {"jobId": job_id, **document, "timestamp": at}


def report_once(site: str, error: BaseException) -> bool:
    """Write one JSON line about ``error`` at ``site`` to stderr, unless this cause was reported before."""
    cause = (site, type(error).__name__)
    with _reported_lock:
        if cause in _reported:
            return False
        _reported.add(cause)
    line = {
        "event": SIDE_CHANNEL_FAILED,
        "level": "error",
        "site": site,
        "error_type": cause[1],
        "error": str(error)[:500],
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "note": "reported once per cause; later occurrences are only counted",
    }
    try:
        sys.stderr.write(json.dumps(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr is gone too: the count is all that is left
        pass
    return True


def count(on_failure: DeliveryFailureCallback, failures: int = 1) -> None:
    """Count through the callback; a callback that raises (it writes a metric line) is only reported."""
    try:
        on_failure(failures)
    except Exception as error:  # noqa: BLE001 - the boundary: nothing may escape into the job
        report_once("job_log.count", error)


class Shield:
    """``with Shield(site, on_failure):`` swallows, counts and reports any exception raised inside."""

    __slots__ = ("_on_failure", "_site")

    def __init__(self, site: str, on_failure: DeliveryFailureCallback) -> None:
        self._site = site
        self._on_failure = on_failure

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: TracebackType | None
    ) -> bool:
        if error is None or not isinstance(error, Exception):
            return False  # SystemExit and KeyboardInterrupt stop the worker as they should
        count(self._on_failure)
        report_once(self._site, error)
        return True


def forget_reports() -> None:
    """Tests only: allow every cause to be reported again."""
    with _reported_lock:
        _reported.clear()
