"""The redrive journal: what ``fleet redrive`` has sent, so a rerun after a crash does not send it twice.

SQS standard queues cannot deduplicate a send, and a DLQ message cannot be marked. So before sending a
copy, redrive appends ``sending`` for the DLQ message's ID to this file (flushed to disk); after SQS
accepts the copy it appends ``sent`` with the copy's MessageId; only then does it delete the original.
A rerun that receives a message the journal calls ``sent`` deletes it without sending it again. One
marked only ``sending`` may or may not have been sent; it is sent again (at least once, never lost).

Lines older than SQS's longest retention (14 days) can no longer match a message and are dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

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
        self._load(now or datetime.now(UTC))

    def state(self, message_id: str) -> str | None:
        return self._states.get(message_id)

    def record_sending(self, queue: str, message_ids: Iterable[str]) -> None:
        self._append([{"queue": queue, "message_id": mid, "state": SENDING} for mid in message_ids])

    def record_sent(self, queue: str, copies: Iterable[tuple[str, str]]) -> None:
        self._append(
            [{"queue": queue, "message_id": mid, "state": SENT, "copy_message_id": copy} for mid, copy in copies]
        )

    def _append(self, records: list[dict[str, str]]) -> None:
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
            if self._states.get(record["message_id"]) != SENT:
                self._states[record["message_id"]] = record["state"]

    def _load(self, now: datetime) -> None:
        if not self.path.exists():
            return
        kept: list[str] = []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for line in lines:
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["at"])
                message_id, state = record["message_id"], record["state"]
            except (ValueError, KeyError, TypeError):
                continue  # cut short by a crash mid-write: at worst, one copy is sent again
            if now - at > RETENTION:
                continue
            kept.append(line)
            if self._states.get(message_id) != SENT:
                self._states[message_id] = state
        if len(kept) != len(lines):
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            temporary.replace(self.path)
