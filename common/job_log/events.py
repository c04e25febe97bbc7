"""Job log events as CloudWatch Logs takes them: one JSON object per event, within the service's limits.

PutLogEvents limits (CloudWatch Logs quotas): an event is at most 256 KiB including 26 bytes of
overhead, a batch at most 1 MiB (the same overhead per event counted) and 10,000 events, spanning at
most 24 hours, in chronological order. An event over the limit is summarised, never cut mid-JSON (a fault
probe found watchtower truncating such events into invalid JSON): the summary keeps every small field,
shortens the large ones to string previews, and says so with ``"truncated": true`` and
``"originalBytes"`` (the size of the full JSON), which ``fleet job`` displays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple

EVENT_OVERHEAD_BYTES: Final = 26
MAX_EVENT_BYTES: Final = 256 * 1024
#: The most JSON one event may carry.
MAX_MESSAGE_BYTES: Final = MAX_EVENT_BYTES - EVENT_OVERHEAD_BYTES
MAX_BATCH_BYTES: Final = 1024 * 1024
MAX_BATCH_EVENTS: Final = 10_000
MAX_BATCH_SPAN_MS: Final = 24 * 60 * 60 * 1000
#: A field whose JSON is at most this long is kept whole in a summary.
KEEP_FIELD_BYTES: Final = 1024
#: How many of the shortened fields a summary names.
MAX_NAMED_FIELDS: Final = 20
#: Room left in a summary for the marker fields and rounding.
_SUMMARY_MARGIN: Final = 4096


class LogEvent(NamedTuple):
    """One event ready to ship: its time in epoch milliseconds and its JSON."""

    timestamp: int
    message: str


def encode(record: Mapping[str, Any]) -> str:
    """The record as JSON that fits one event; a value JSON cannot encode is written as its ``str()``.

    ASCII-only JSON (the default) makes ``len()`` the UTF-8 size, so the limit check costs nothing.
    """
    text = json.dumps(record, default=str, separators=(",", ":"))  # compact: Logs bills every byte
    return text if len(text) <= MAX_MESSAGE_BYTES else summarise(record, len(text))


def summarise(record: Mapping[str, Any], original_bytes: int) -> str:
    """A valid JSON summary of an oversized record, marked ``truncated`` with its ``originalBytes``."""
    kept: dict[str, Any] = {}
    large: dict[str, str] = {}
    for key, value in record.items():
        piece = json.dumps(value, default=str)
        if len(piece) <= KEEP_FIELD_BYTES:
            kept[key] = value
        else:
            large[key] = piece
    kept.update(truncated=True, originalBytes=original_bytes, truncatedFields=sorted(large)[:MAX_NAMED_FIELDS])
    text = json.dumps(kept, default=str)
    if len(text) + _SUMMARY_MARGIN > MAX_MESSAGE_BYTES:  # thousands of small fields: keep only the markers
        return json.dumps(_bare(record, original_bytes))
    # A preview's JSON escaping at most doubles it (quotes and backslashes of ASCII text).
    share = (MAX_MESSAGE_BYTES - len(text) - _SUMMARY_MARGIN) // (2 * max(1, len(large)))
    for key, piece in large.items():
        kept[key] = piece[:share]
    text = json.dumps(kept, default=str)
    return text if len(text) <= MAX_MESSAGE_BYTES else json.dumps(_bare(record, original_bytes))


def _bare(record: Mapping[str, Any], original_bytes: int) -> dict[str, Any]:
    """The last resort: the event's identity (short fields only) and the markers."""
    identity = {
        key: record[key]
        for key in ("jobId", "message", "level", "timestamp")
        if isinstance(record.get(key), str) and len(record[key]) <= KEEP_FIELD_BYTES
    }
    return {**identity, "truncated": True, "originalBytes": original_bytes}


def batches(events: list[LogEvent]) -> Iterator[list[LogEvent]]:
    """``events`` in time order, cut into PutLogEvents-sized batches (bytes, count and 24-hour span)."""
    batch: list[LogEvent] = []
    size = 0
    for event in sorted(events, key=lambda event: event.timestamp):
        event_size = len(event.message) + EVENT_OVERHEAD_BYTES
        if batch and (
            size + event_size > MAX_BATCH_BYTES
            or len(batch) == MAX_BATCH_EVENTS
            or event.timestamp - batch[0].timestamp > MAX_BATCH_SPAN_MS
        ):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch


def rejected(batch: list[LogEvent], info: Mapping[str, int] | None) -> list[LogEvent]:
    """The events of ``batch`` that PutLogEvents' ``rejectedLogEventsInfo`` says were not stored.

    The API reference calls ``tooOldLogEventEndIndex`` exclusive while moto reports the index of the last
    old event; the boundary event is counted as rejected, so an event can end up both in the stream and
    in the fallback, never in neither.
    """
    if not info:
        return []
    old_end = max(info.get("tooOldLogEventEndIndex", -1), info.get("expiredLogEventEndIndex", -1))
    new_start = info.get("tooNewLogEventStartIndex", len(batch))
    return [event for index, event in enumerate(batch) if index <= old_end or index >= new_start]
