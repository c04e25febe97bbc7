"""``fleet redrive``: move DLQ messages back to their source queue, safely and at most a few times each.

For each batch of up to ten received messages:

1. Decide: skip a message redriven as often as the loop limit allows (it would only come back),
   skip a quarantined one (it carries ``QuarantineReason``: malformed, it would only fail again) unless
   forced, skip what the filters exclude. Skipped messages stay in the DLQ and are reported. The count
   comes from the journal (the copies this redrive sent), never from the message's ``RedriveCount``
   attribute: a sender can set any attribute, and SQS's redrive policy carries it into the DLQ.
2. Journal ``sending``, send copies with SendMessageBatch (attributes kept, ``RedriveCount`` + 1),
   journal ``sent``, and only then delete the originals. A message the journal already calls ``sent``
   is only deleted: it was copied by an earlier run that died before its delete.

Received messages stay invisible until the run ends, so each is handled once; whatever was not deleted
is made visible again on the way out, also after an error or Ctrl-C.

SQS's StartMessageMoveTask moves a whole DLQ server-side, but it cannot stamp a counter, filter, or
leave quarantined messages behind, so it is not used: it would defeat the loop prevention.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from common.sqs.quarantine import (
    ATTR_ORIGINAL_MESSAGE_ID,
    ATTR_REDRIVE_COUNT,
    ATTR_REDRIVEN_FROM,
    FLEET_OWNED_ATTRIBUTES,
)
from fleet.cli.dlq import (
    SQS_BATCH,
    DlqMessage,
    Predicate,
    held,
    matches_all,
    receive_batch,
)
from fleet.cli.journal import SENT, Journal
from fleet.cli.queues import Queue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

DEFAULT_LOOP_LIMIT: Final = 3
MAX_ATTRIBUTES: Final = 10


@dataclass(frozen=True, slots=True)
class RedriveOptions:
    limit: int
    loop_limit: int = DEFAULT_LOOP_LIMIT
    force: bool = False
    dry_run: bool = False
    filters: Sequence[Predicate] = ()
    visibility_seconds: int = 300
    wait_seconds: int = 1


@dataclass(slots=True)
class RedriveReport:
    """What happened to each message the run looked at."""

    dry_run: bool = False
    moved: list[tuple[str, str]] = field(default_factory=list)
    would_move: list[str] = field(default_factory=list)
    completed_earlier: list[str] = field(default_factory=list)
    at_loop_limit: list[tuple[DlqMessage, int]] = field(default_factory=list)
    quarantined: list[DlqMessage] = field(default_factory=list)
    too_many_attributes: list[str] = field(default_factory=list)
    filtered_out: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    not_deleted: list[str] = field(default_factory=list)

    @property
    def examined(self) -> int:
        return (
            len(self.moved)
            + len(self.would_move)
            + len(self.completed_earlier)
            + len(self.at_loop_limit)
            + len(self.quarantined)
            + len(self.too_many_attributes)
            + self.filtered_out
            + len(self.failed)
        )

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_deleted


ProgressCallback = Callable[[RedriveReport], object]


def copy_attributes(message: DlqMessage, redrive_count: int) -> dict[str, MessageAttributeValueTypeDef] | None:
    """The copy's attributes: the sender's, a new RedriveCount, and RedrivenFrom if there is room.

    Fleet-owned attributes are dropped: quarantine ones describe the DLQ copy (main_job stamps fresh
    ones if it quarantines again), and redrive's own are written anew. RedrivenFrom names the DLQ
    MessageId the copy came from, for tracing. None means the sender's attributes leave no room for
    RedriveCount.
    """
    attributes: dict[str, MessageAttributeValueTypeDef] = {}
    for name, value in message.raw_attributes.items():
        if name in FLEET_OWNED_ATTRIBUTES:
            continue
        kept: MessageAttributeValueTypeDef = {"DataType": value["DataType"]}
        if "StringValue" in value:
            kept["StringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            kept["BinaryValue"] = value["BinaryValue"]
        attributes[name] = kept
    if len(attributes) >= MAX_ATTRIBUTES:
        return None
    attributes[ATTR_REDRIVE_COUNT] = {"DataType": "Number", "StringValue": str(redrive_count)}
    if len(attributes) < MAX_ATTRIBUTES:
        attributes[ATTR_REDRIVEN_FROM] = {"DataType": "String", "StringValue": message.message_id}
    return attributes


class Redrive:
    """One redrive run from ``dlq`` to ``target``."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        dlq: Queue,
        target: Queue,
        journal: Journal,
        options: RedriveOptions,
        progress: ProgressCallback | None = None,
        progress_every: int = 100,
    ) -> None:
        self._sqs = sqs
        self._dlq = dlq
        self._target = target
        self._journal = journal
        self._options = options
        self._progress = progress
        self._progress_every = progress_every
        self.report = RedriveReport(dry_run=options.dry_run)

    def run(self) -> RedriveReport:
        seen: set[str] = set()
        last_progress = 0
        with held(self._sqs, self._dlq.url) as holding:
            while self._room() > 0:
                batch = receive_batch(
                    self._sqs,
                    self._dlq.url,
                    count=SQS_BATCH,
                    visibility_seconds=self._options.visibility_seconds,
                    wait_seconds=self._options.wait_seconds,
                )
                # Held from the moment they arrive, so an error or Ctrl-C mid-batch releases them too.
                holding.update((message.message_id, message) for message in batch)
                fresh = [message for message in batch if message.message_id not in seen]
                if not fresh:
                    break
                seen.update(message.message_id for message in fresh)
                for message in self._process(fresh):
                    del holding[message.message_id]
                if self._progress and self.report.examined - last_progress >= self._progress_every:
                    last_progress = self.report.examined
                    self._progress(self.report)
        return self.report

    def _room(self) -> int:
        return self._options.limit - len(self.report.moved) - len(self.report.would_move)

    def _process(self, batch: list[DlqMessage]) -> list[DlqMessage]:
        """Handle one received batch; return the messages deleted from the DLQ (the rest stay held)."""
        to_send: list[tuple[DlqMessage, dict[str, MessageAttributeValueTypeDef]]] = []
        leftovers: list[DlqMessage] = []
        for message in batch:
            if self._journal.state(message.message_id) == SENT:
                self.report.completed_earlier.append(message.message_id)
                if not self._options.dry_run:
                    leftovers.append(message)
                continue
            attributes = self._eligible(message)
            if attributes is None or self._room() - len(to_send) <= 0:
                continue
            if self._options.dry_run:
                self.report.would_move.append(message.message_id)
            else:
                to_send.append((message, attributes))
        return self._delete([*leftovers, *self._send(to_send)])

    def _eligible(self, message: DlqMessage) -> dict[str, MessageAttributeValueTypeDef] | None:
        """The copy's attributes, or None (and the reason recorded) if the message stays."""
        if not matches_all(self._options.filters, message):
            self.report.filtered_out += 1
            return None
        count = self.redrive_count(message)
        if count >= self._options.loop_limit:
            self.report.at_loop_limit.append((message, count))
            return None
        if message.quarantine_reason and not self._options.force:
            self.report.quarantined.append(message)
            return None
        attributes = copy_attributes(message, count + 1)
        if attributes is None:
            self.report.too_many_attributes.append(message.message_id)
        return attributes

    def redrive_count(self, message: DlqMessage) -> int:
        """Redrives so far, by the journal: the message is a copy we sent, or a quarantined one's DLQ copy."""
        original = message.attributes.get(ATTR_ORIGINAL_MESSAGE_ID, "") if message.quarantine_reason else ""
        return self._journal.redrive_count(message.message_id, original)

    def _send(self, items: list[tuple[DlqMessage, dict[str, MessageAttributeValueTypeDef]]]) -> list[DlqMessage]:
        """Journal, send the copies, journal again; return the originals whose copy SQS accepted."""
        if not items:
            return []
        self._journal.record_sending(self._dlq.url, [message.message_id for message, _ in items])
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "MessageBody": message.body, "MessageAttributes": attributes}
            for index, (message, attributes) in enumerate(items)
        ]
        response = self._sqs.send_message_batch(QueueUrl=self._target.url, Entries=entries)
        copies = {int(entry["Id"]): entry["MessageId"] for entry in response.get("Successful", [])}
        for entry in response.get("Failed", []):
            message = items[int(entry["Id"])][0]
            self.report.failed.append((message.message_id, f"{entry.get('Code')}: {entry.get('Message', '')}"))
        done = [(items[index][0], copy) for index, copy in sorted(copies.items())]
        count = {message.message_id: int(attrs[ATTR_REDRIVE_COUNT]["StringValue"]) for message, attrs in items}
        self._journal.record_sent(
            self._dlq.url, [(message.message_id, copy, count[message.message_id]) for message, copy in done]
        )
        self.report.moved += [(message.message_id, copy) for message, copy in done]
        return [message for message, _ in done]

    def _delete(self, messages: list[DlqMessage]) -> list[DlqMessage]:
        """Delete originals that now have a copy; return those deleted (a rerun deletes the others)."""
        if not messages:
            return []
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": message.receipt_handle} for index, message in enumerate(messages)
        ]
        response = self._sqs.delete_message_batch(QueueUrl=self._dlq.url, Entries=entries)
        failed = {int(entry["Id"]) for entry in response.get("Failed", [])}
        self.report.not_deleted += [messages[index].message_id for index in sorted(failed)]
        return [message for index, message in enumerate(messages) if index not in failed]


def render(report: RedriveReport, *, dlq: Queue, target: Queue) -> str:
    verb = "would move" if report.dry_run else "moved"
    count = len(report.would_move) if report.dry_run else len(report.moved)
    lines = [f"{verb} {count} message(s) from {dlq.name} to {target.name}" + (" (dry run)" if report.dry_run else "")]
    lines += [f"  {mid} -> {copy}" for mid, copy in report.moved]
    lines += [f"  {mid}" for mid in report.would_move]
    if report.completed_earlier:
        verb = "would remove" if report.dry_run else "removed"
        lines.append(f"{verb} {len(report.completed_earlier)} message(s) an earlier run had already moved")
    if report.at_loop_limit:
        lines.append(f"left {len(report.at_loop_limit)} message(s) at the loop limit (RedriveCount reached):")
        lines += [f"  {m.message_id}  redrives={count}" for m, count in report.at_loop_limit]
    if report.quarantined:
        lines.append(f"left {len(report.quarantined)} quarantined message(s) (malformed; --force to redrive):")
        lines += [f"  {m.message_id}  {m.quarantine_reason}" for m in report.quarantined]
    if report.too_many_attributes:
        lines.append(f"left {len(report.too_many_attributes)} message(s) with no room for RedriveCount (10 attributes)")
    if report.filtered_out:
        lines.append(f"left {report.filtered_out} message(s) that do not match the filter")
    for mid, reason in report.failed:
        lines.append(f"FAILED to send {mid}: {reason}")
    if report.not_deleted:
        lines.append(
            "sent but not yet deleted from the DLQ (the next run deletes them): " + ", ".join(report.not_deleted)
        )
    return "\n".join(lines) + "\n"


def progress_line(report: RedriveReport) -> str:
    done = len(report.would_move) if report.dry_run else len(report.moved)
    return f"redrive: examined {report.examined}, {'would move' if report.dry_run else 'moved'} {done}\n"
