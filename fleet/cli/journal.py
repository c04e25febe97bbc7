"""The redrive journal: what ``fleet redrive`` has sent, so a rerun after a crash does not send it twice.

SQS standard queues cannot deduplicate a send, and a DLQ message cannot be marked. So before sending a
copy, redrive appends ``sending`` for the DLQ message's ID to this file (flushed to disk); after SQS
accepts the copy it appends ``sent`` with the copy's MessageId; only then does it delete the original.
A rerun that receives a message the journal calls ``sent`` deletes it without sending it again. One
marked only ``sending`` may or may not have been sent; it is sent again (at least once, never lost).

The journal is also where redrive's loop count lives. Each ``sent`` line records the copy's MessageId
and its redrive count. A copy that comes back to the DLQ is found by its own MessageId (the redrive
policy keeps it) or, if main_job or background_job quarantined it, by the ``OriginalMessageId`` the
fleet's quarantine stamped. The ``RedriveCount`` attribute on the copy is for people reading the queue;
it is never read back, because a sender can set any attribute (issue 20).

Lines older than SQS's longest retention (14 days) can no longer match a message and are dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

SENDING: Final = "sending"
SENT: Final = "sent"
RETENTION: Final = timedelta(days=14)


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(state) / "fleet" / "redrive-journal.jsonl"


class Journal:
    """An append-only JSON-lines file keyed by DLQ MessageId (unique per message, stable across receives)."""

    def __init__(self, path: Path, *, now: datetime | None = None) -> None:
        self.path = path
        self._states: dict[str, str] = {}
        self._copies: dict[str, int] = {}
        self._load(now or datetime.now(UTC))

    def state(self, message_id: str) -> str | None:
        return self._states.get(message_id)

    def redrive_count(self, *message_ids: str) -> int:
        """How often the message behind these IDs was redriven: 0 unless one of them is a copy we sent."""
        return max((self._copies.get(message_id, 0) for message_id in message_ids if message_id), default=0)

    def record_sending(self, queue: str, message_ids: Iterable[str]) -> None:
        self._append([{"queue": queue, "message_id": mid, "state": SENDING} for mid in message_ids])

    def record_sent(self, queue: str, copies: Iterable[tuple[str, str, int]]) -> None:
        """``(DLQ MessageId, copy's MessageId, the copy's redrive count)`` for each copy SQS accepted."""
        self._append(
            [
                {"queue": queue, "message_id": mid, "state": SENT, "copy_message_id": copy, "redrive_count": count}
                for mid, copy, count in copies
            ]
        )

    def _append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as stream:
            for record in records:
                stream.write(json.dumps({"at": at, **record}) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        for record in records:
            self._remember(record)

    def _remember(self, record: dict[str, Any]) -> None:
        if self._states.get(record["message_id"]) != SENT:
            self._states[record["message_id"]] = record["state"]
        copy, count = record.get("copy_message_id"), record.get("redrive_count", 1)
        if isinstance(copy, str) and isinstance(count, int):
            self._copies[copy] = max(count, self._copies.get(copy, 0))

    def _load(self, now: datetime) -> None:
        if not self.path.exists():
            return
        kept: list[str] = []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["at"])
            except (ValueError, KeyError, TypeError):
                continue  # cut short by a crash mid-write: at worst, one copy is sent again
            if not {"message_id", "state"} <= record.keys() or now - at > RETENTION:
                continue
            kept.append(line)
            self._remember(record)
        if len(kept) != len(lines):
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            temporary.replace(self.path)
