"""The long-polling SQS consumer shared by both services.

The loop is deliberately short. Each turn: settle what finished, then, if there are free slots and no
stop was requested, receive that many messages and hand their leases to the dispatcher. The loop thread
is the one place that settles (between receives, in batches); jobs only record their outcomes. Every way
out of the loop logs its reason once.

Shutdown: no receive starts after the stop request; running work gets until the request's time plus the
grace period (ECS's SIGKILL counts from the signal, not from whenever a long poll returned); unstarted
messages are released at once; a job that finishes meanwhile is settled at once (no settle window); and
when the grace period ends, every job that returned is settled then and there, without waiting on its
log (the process stays up until those outcomes and deletes are written), while the messages of jobs
still running are released and nothing is extended any more, so another worker can run them at once.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from common import side_channels
from common.health import Liveness
from common.logging import get_logger
from common.sqs.dispatch import SQS_RECEIVE_LIMIT, Dispatcher, SlotReport
from common.sqs.hooks import DeliveryHooks, NoHooks
from common.sqs.in_flight import InFlight, Lease, VisibilityHeartbeat
from common.sqs.inbound import SYSTEM_ATTRIBUTES, InboundMessage
from common.sqs.outcome import Outcome
from common.sqs.settlement import Settler
from common.sqs.shutdown import Shutdown
from common.sqs.time_limit import EXIT_SLOTS_LOST

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = get_logger(__name__)
_MAX_RECEIVE_BACKOFF_SECONDS = 30.0
#: The long poll while jobs are running: the loop settles between receives, so a job finishing during a
#: 20 s poll would wait that long for its delete. Idle workers still poll for the full RECEIVE_WAIT_SECONDS.
BUSY_RECEIVE_WAIT_SECONDS = 2
#: A busy worker deletes in batches of ten; a partial batch waits at most this long (heartbeated).
SETTLE_WINDOW_SECONDS = 1.0


class Consumer:
    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        dispatcher: Dispatcher,
        settler: Settler,
        in_flight: InFlight,
        shutdown: Shutdown,
        liveness: Liveness,
        receive_wait_seconds: int,
        shutdown_grace_seconds: float,
        hooks: DeliveryHooks | None = None,
    ) -> None:
        self._hooks = hooks or NoHooks()
        self._sqs = sqs
        self._queue_url = queue_url
        self._dispatcher = dispatcher
        self._settler = settler
        self._in_flight = in_flight
        dispatcher.watch_returns(self._returned)
        self._heartbeat = VisibilityHeartbeat(
            sqs=sqs, queue_url=queue_url, in_flight=in_flight, on_extended=self._hooks.extended
        )
        self._shutdown = shutdown
        self._liveness = liveness
        self._receive_wait_seconds = receive_wait_seconds
        self._grace_seconds = shutdown_grace_seconds
        self._receive_failures = 0
        #: Jobs still running when the grace period ended (their messages were released): the process
        #: must then exit without waiting for their threads.
        self.abandoned_jobs = 0

    def run(self) -> None:
        """Consume until shutdown is requested; return once every owned message is settled or released."""
        self._heartbeat.start()
        watcher = threading.Thread(target=self._log_shutdown_request, name="shutdown-watch", daemon=True)
        watcher.start()
        log.info("worker.started", queue_url=self._queue_url)
        exit_reason = "unknown"
        try:
            while not self._shutdown.is_requested():
                self._turn()
            exit_reason = self._shutdown.reason or "shutdown requested"
        except BaseException as error:
            exit_reason = f"crashed: {type(error).__name__}: {error}"
            raise
        finally:
            self._stop()
            log.info("worker.stopped", reason=exit_reason)
            self._shutdown.request(exit_reason)  # lets the watcher thread end on a crash too
            watcher.join(timeout=5)

    def _turn(self) -> None:
        slots = self._dispatcher.slot_report()
        self._liveness.touch(problem=slots.unhealthy_reason)
        self._check_log_outage()
        self._check_lost_slots(slots)
        self._release_stale()
        ready = self._dispatcher.wait_for_free_slot(timeout=1.0)
        # Settling after the wait, just before the receive, deletes every job that finished while the
        # buffer drained in one DeleteMessageBatch, instead of a straggler or two right after each receive.
        self._settle_finished()
        if ready and not self._shutdown.is_requested():
            self._poll_once()

    def _returned(self, lease: Lease, outcome: Outcome) -> None:
        """On the job's thread, the moment it returns: the hooks record its outcome (the ledger's write)."""
        try:
            self._hooks.returned(lease, outcome, self._settler.is_last_attempt)
        except Exception as error:
            log.exception("delivery.returned_hook_crashed", message_id=lease.message.message_id, error=str(error))

    def _log_shutdown_request(self) -> None:
        """The signal handler only sets the event; the request is logged here, promptly, even mid-poll."""
        self._shutdown.wait(None)
        log.info("worker.shutdown_requested", reason=self._shutdown.reason)

    def _check_log_outage(self) -> None:
        failing_for = side_channels.STDOUT.failing_for(time.monotonic())
        if failing_for >= side_channels.LOG_OUTAGE_EXIT_SECONDS:
            side_channels.report_on_stderr(
                {"event": "worker.logs_unwritable", "failing_for_seconds": round(failing_for), "action": "exiting"}
            )
            self._shutdown.request(
                f"stdout unwritable for {failing_for:.0f}s", exit_status=side_channels.EXIT_LOGS_UNWRITABLE
            )

    def _check_lost_slots(self, slots: SlotReport) -> None:
        """Too many slots lost to hung jobs: stop receiving, settle what is owned, exit to be replaced."""
        if slots.exit_reason is not None and not self._shutdown.is_requested():
            log.error("worker.slots_lost", lost=slots.lost, reason=slots.exit_reason, action="exiting")
            self._shutdown.request(slots.exit_reason, exit_status=EXIT_SLOTS_LOST)

    def threads_left_behind(self) -> int:
        """Job threads the process must not wait for at exit: jobs that overran the grace period (their
        messages released) and jobs that timed out (settled already) whose threads still run."""
        return self.abandoned_jobs + self._dispatcher.slot_report().lost

    def _settle_finished(self) -> None:
        if self._settle_due():
            self._settle_now()

    def _settle_now(self) -> None:
        finished = self._in_flight.take_finished()
        if finished or self._settler.pending():
            self._settler.settle(finished)

    def _settle_due(self) -> bool:
        """Settle a full batch at once; fewer only once the oldest has waited SETTLE_WINDOW_SECONDS, or
        before the loop goes idle (a long poll must not hold a lone job's delete)."""
        count, oldest = self._in_flight.finished_backlog()
        if count >= SQS_RECEIVE_LIMIT or self._settler.pending() or oldest is None:
            return True  # nothing finished: only pending deletes (if any) to retry
        return self._in_flight.clock() - oldest >= SETTLE_WINDOW_SECONDS or self._dispatcher.wait_until_idle(0)

    def _release_stale(self) -> None:
        """Messages received ahead that found no slot within their bound go back to the queue at once."""
        stale = self._dispatcher.take_stale()
        if stale:
            self._settler.release(stale)

    def _poll_once(self) -> None:
        wanted = max(1, min(SQS_RECEIVE_LIMIT, self._dispatcher.free_slots()))
        messages = self._receive(wanted)
        if not messages:
            return
        leases = self._in_flight.open(messages)
        if self._shutdown.is_requested():
            # The long poll returned after the stop signal: these were never started, give them back.
            self._settler.release(leases)
            return
        self._dispatcher.dispatch(self._admit(leases))

    def _admit(self, leases: list[Lease]) -> list[Lease]:
        """The hooks' say on what runs (the job ledger's claim); a bug there costs a retry, not the worker."""
        try:
            return self._hooks.admit(leases)
        except Exception as error:
            log.exception("delivery.admit_crashed", messages=len(leases), error_type=type(error).__name__)
            for lease in leases:
                lease.finish(Outcome.retry(f"admission failed: {type(error).__name__}: {error}"))
            return []

    def _receive(self, wanted: int) -> list[InboundMessage]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=self._receive_wait(),
                MessageSystemAttributeNames=list(SYSTEM_ATTRIBUTES),
                MessageAttributeNames=["All"],
            )
        except (BotoCoreError, ClientError) as error:
            self._receive_failures += 1
            delay = min(_MAX_RECEIVE_BACKOFF_SECONDS, 2.0 ** min(self._receive_failures, 5))
            log.warning("receive.failed", error=str(error), retry_in_seconds=delay)
            self._shutdown.wait(delay)
            return []
        self._receive_failures = 0
        return [InboundMessage.from_sqs(raw) for raw in response.get("Messages", [])]

    def _receive_wait(self) -> int:
        if self._dispatcher.wait_until_idle(timeout=0):
            return self._receive_wait_seconds
        return min(self._receive_wait_seconds, BUSY_RECEIVE_WAIT_SECONDS)

    def _stop(self) -> None:
        """Release what never started, let running work finish until the deadline, settle everything."""
        unstarted = self._dispatcher.cancel_unstarted()
        if unstarted:
            self._settler.release(unstarted)
        deadline = self._shutdown.deadline(self._grace_seconds)
        while not self._dispatcher.wait_until_idle(min(SETTLE_WINDOW_SECONDS, max(0.0, deadline - time.monotonic()))):
            self._settle_now()  # stopping: a finished job waits for no settle window
            if time.monotonic() >= deadline:
                break
        # Jobs that returned but wait on their log are finished by abandon(), and settled just below.
        abandoned = self._dispatcher.abandon()
        # A job ending from here on (racing the release below) settles its own lease in its thread.
        self._settler.settle(self._in_flight.settle_late(self._settler.settle))
        # Nothing is extended after this point: the process is about to exit, so a job still running
        # would only be kept invisible until the visibility timeout ran out after the kill.
        self._heartbeat.stop()
        self._release_abandoned(abandoned)
        if self._settler.pending():
            log.error("worker.deletes_unconfirmed", messages=self._settler.pending(), will_be_redelivered=True)
        log.info("worker.drained", released=len(unstarted), still_owned=len(self._in_flight))

    def _release_abandoned(self, abandoned: list[Lease]) -> None:
        """Hand back the messages of jobs still running at the deadline, so another worker runs them now.

        ECS kills the task 5 s after the grace period (stopTimeout); waiting that out, or the visibility
        timeout after it, only delays the retry. The job's thread is left running until the process exits
        (``threads_left_behind`` tells the entry point to exit without joining it); its late outcome finds
        the lease closed and changes nothing.
        """
        still_open = [lease for lease in abandoned if self._in_flight.is_open(lease) and lease.outcome is None]
        if not abandoned:
            return
        log.warning(
            "worker.jobs_abandoned",
            messages=[lease.message.message_id for lease in abandoned],
            grace_seconds=self._grace_seconds,
            released=len(still_open),
        )
        self.abandoned_jobs = len(abandoned)
        if still_open:
            self._settler.release(still_open)
