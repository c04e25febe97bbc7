"""The deliveries this process owns, one lease per receipt handle, and the heartbeat that walks them.

A lease is opened when a message is received and closed only once SQS has answered for it (deleted,
handed back, or given up). Whoever runs the job records its outcome on the lease in a ``finally``
(:meth:`Lease.finish`), so a job that ends in any way, even by ``SystemExit``, is settled; the loop
thread settles finished leases in batches between receives (common/sqs/settlement.py).

Leases are keyed by receipt handle, not MessageId: one message delivered twice to this process is two
deliveries with two handles, and settling one must not stop the other's heartbeat (issue 19).

A job that outlives its visibility timeout would be delivered again while still running. The
heartbeat extends, in one batched call, every open lease that has used half its visibility, so a short
job costs no extra request and a long job costs one per half-timeout. Finished leases whose settlement
is still pending are extended too, so a delete waiting out a long poll or an SQS brownout does not
expire. Hand-backs (retry, release) take :attr:`InFlight.visibility_lock` like the heartbeat does, so an
extension in flight can never land after, and undo, a hand-back. The job ledger's leases follow the
extensions outside that lock and off the heartbeat's thread (common/sqs/relay.py): the heartbeat never
waits on DynamoDB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from common.logging import get_logger
from common.messages import ATTR_CORRELATION_ID, ATTR_JOB_ID
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome
from common.sqs.relay import ExtensionRelay

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ChangeMessageVisibilityBatchRequestEntryTypeDef

log = get_logger(__name__)
SQS_BATCH_LIMIT = 10
#: Settles leases that finish after the loop has stopped (a job that overran the grace period).
LateSettler = Callable[[list["Lease"]], None]


@dataclass(eq=False, slots=True)
class Lease:
    """One delivery owned by this process, from receive until SQS has answered for it."""

    message: InboundMessage
    registry: InFlight
    visible_again_at: float
    outcome: Outcome | None = None
    finished_at: float | None = None
    #: job_id / correlation_id for log lines about this delivery, when its message carries them.
    log_fields: dict[str, str] = field(default_factory=dict)
    #: The job ID the ledger knows this delivery by, once admitted to run (common/ledger/gate.py);
    #: ``ledger_claimed`` when it runs under this worker's lease, ``ledger_recorded`` once its outcome is.
    ledger_job: str | None = None
    ledger_claimed: bool = False
    ledger_recorded: bool = False
    #: Set once the ledger said an operator cancelled this running job (its job was told).
    cancel_requested: bool = False
    #: Runs of this job started, this delivery's included, as the ledger's claim counted them; it decides
    #: the last attempt. 0: the gate did not run this delivery (busy, refused, ledger unavailable), so it
    #: is no attempt. None: no ledger, and SQS's receive count stands in (common/sqs/settlement.py).
    attempts: int | None = None

    @property
    def receipt_handle(self) -> str:
        return self.message.receipt_handle

    def finish(self, outcome: Outcome) -> None:
        """Record the job's outcome (first one wins); call it in a ``finally`` of whatever ran the job."""
        self.registry.finish(self, outcome)

    def visible_for(self) -> float:
        """Seconds until this delivery becomes visible again (negative once it has)."""
        return self.visible_again_at - self.registry.clock()

    def visible_until_ms(self) -> int:
        """When this delivery becomes visible again, in epoch milliseconds (what a ledger lease may last)."""
        return int((time.time() + self.visible_for()) * 1000)


def _log_fields(message: InboundMessage) -> dict[str, str]:
    names = {"job_id": ATTR_JOB_ID, "correlation_id": ATTR_CORRELATION_ID}
    return {key: message.attributes[name] for key, name in names.items() if message.attributes.get(name)}


class InFlight:
    """Thread-safe registry of open leases, by receipt handle, and of finished ones awaiting settlement."""

    def __init__(self, visibility_timeout: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.visibility_timeout = visibility_timeout
        self.clock = clock
        #: Held by the heartbeat around an extension and by settlement around a hand-back.
        self.visibility_lock = threading.Lock()
        self._open: dict[str, Lease] = {}
        self._finished: list[Lease] = []
        self._late: LateSettler | None = None
        self._condition = threading.Condition()

    def open(self, messages: Iterable[InboundMessage]) -> list[Lease]:
        leases = [
            Lease(message, self, message.received_at + self.visibility_timeout, log_fields=_log_fields(message))
            for message in messages
        ]
        with self._condition:
            for lease in leases:
                self._open[lease.receipt_handle] = lease
        return leases

    def finish(self, lease: Lease, outcome: Outcome) -> None:
        with self._condition:
            if lease.outcome is not None or lease.receipt_handle not in self._open:
                return
            lease.outcome, lease.finished_at = outcome, self.clock()
            late = self._late
            if late is None:
                self._finished.append(lease)
            self._condition.notify_all()
        if late is not None:
            late([lease])  # the loop has gone: settle here, in the thread that ran the job

    def take_finished(self) -> list[Lease]:
        with self._condition:
            finished, self._finished = self._finished, []
            return finished

    def finished_backlog(self) -> tuple[int, float | None]:
        """How many finished leases await settlement, and when the oldest of them finished."""
        with self._condition:
            return len(self._finished), (self._finished[0].finished_at if self._finished else None)

    def settle_late(self, settle: LateSettler) -> list[Lease]:
        """From now on leases finishing are settled by ``settle`` in their own thread; returns those already done."""
        with self._condition:
            self._late = settle
            finished, self._finished = self._finished, []
            return finished

    def close(self, leases: Iterable[Lease]) -> None:
        """Forget leases that SQS has answered for: nothing extends them any more."""
        with self._condition:
            for lease in leases:
                if self._open.get(lease.receipt_handle) is lease:
                    del self._open[lease.receipt_handle]
            self._condition.notify_all()

    def __len__(self) -> int:
        with self._condition:
            return len(self._open)

    def is_open(self, lease: Lease) -> bool:
        with self._condition:
            return self._open.get(lease.receipt_handle) is lease

    def due_for_extension(self, now: float) -> list[Lease]:
        horizon = now + self.visibility_timeout / 2
        with self._condition:
            return [lease for lease in self._open.values() if lease.visible_again_at <= horizon]

    def mark_extended(self, leases: Iterable[Lease], now: float) -> None:
        with self._condition:
            for lease in leases:
                lease.visible_again_at = now + self.visibility_timeout


class VisibilityHeartbeat:
    """A daemon thread that extends the visibility of long-running (and not yet settled) deliveries."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        in_flight: InFlight,
        on_extended: Callable[[Sequence[Lease]], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self._relay = ExtensionRelay(on_extended) if on_extended is not None else None
        self._queue_url = queue_url
        self._in_flight = in_flight
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-heartbeat", daemon=True)
        self.extensions = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)
        if self._relay is not None:
            self._relay.stop(timeout=1)  # a ledger write still hanging is not waited for: nothing depends on it

    def _run(self) -> None:
        interval = max(0.5, self._in_flight.visibility_timeout / 6)
        while not self._stopped.wait(interval):
            self.extend_due(self._in_flight.clock())

    def extend_due(self, now: float) -> None:
        # Holding the lock from choosing the leases until SQS answered: a hand-back waits for this call
        # instead of being overtaken by it, and a lease closed meanwhile is never chosen. Every due lease
        # is extended before the ledger hears of any (after the lock, on the relay's thread).
        extended: list[Lease] = []
        with self._in_flight.visibility_lock:
            due = self._in_flight.due_for_extension(now)
            for start in range(0, len(due), SQS_BATCH_LIMIT):
                extended += self._extend(due[start : start + SQS_BATCH_LIMIT], now)
        if extended and self._relay is not None:
            self._relay.submit(extended)  # the job ledger's leases move with the messages' visibility

    def _extend(self, batch: Sequence[Lease], now: float) -> list[Lease]:
        """One ChangeMessageVisibilityBatch; returns the leases it extended."""
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "ReceiptHandle": lease.receipt_handle,
                "VisibilityTimeout": self._in_flight.visibility_timeout,
            }
            for index, lease in enumerate(batch)
        ]
        try:
            response = self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            log.warning("visibility.extend_failed", error=str(error), messages=len(batch))
            return []
        failed = {entry["Id"]: entry for entry in response.get("Failed", [])}
        extended = [lease for index, lease in enumerate(batch) if str(index) not in failed]
        self._in_flight.mark_extended(extended, now)
        self.extensions += len(extended)
        for index, entry in failed.items():
            lease = batch[int(index)]
            log.warning(
                "visibility.extend_failed",
                message_id=lease.message.message_id,
                **lease.log_fields,
                code=entry.get("Code"),
                possible_duplicate=True,
            )
        for lease in extended:
            log.info(
                "visibility.extended",
                message_id=lease.message.message_id,
                **lease.log_fields,
                seconds=self._in_flight.visibility_timeout,
            )
        return extended
