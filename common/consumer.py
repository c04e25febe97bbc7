"""The long-polling SQS consumer shared by both services.

The loop is deliberately short: receive as many messages as there are free slots, hand them to the
dispatcher, repeat until shutdown is requested. Settling, visibility heartbeats and retries live in
their own modules; every way out of the loop logs its reason once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from common.dispatch import SQS_RECEIVE_LIMIT, Dispatcher
from common.health import Liveness
from common.in_flight import InFlight, VisibilityHeartbeat
from common.inbound import SYSTEM_ATTRIBUTES, InboundMessage
from common.logging import get_logger
from common.settlement import Settler
from common.shutdown import Shutdown

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = get_logger(__name__)
_MAX_RECEIVE_BACKOFF_SECONDS = 30.0


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
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dispatcher = dispatcher
        self._settler = settler
        self._in_flight = in_flight
        self._heartbeat = VisibilityHeartbeat(sqs=sqs, queue_url=queue_url, in_flight=in_flight)
        self._shutdown = shutdown
        self._liveness = liveness
        self._receive_wait_seconds = receive_wait_seconds
        self._grace_seconds = shutdown_grace_seconds
        self._receive_failures = 0

    def run(self) -> None:
        """Consume until shutdown is requested; return once every owned message is settled or released."""
        self._settler.start()
        self._heartbeat.start()
        log.info("worker.started", queue_url=self._queue_url)
        exit_reason = "unknown"
        try:
            while not self._shutdown.is_requested():
                self._liveness.touch()
                if self._dispatcher.wait_for_free_slot(timeout=1.0):
                    self._poll_once()
            exit_reason = self._shutdown.reason or "shutdown requested"
        except BaseException as error:
            exit_reason = f"crashed: {type(error).__name__}: {error}"
            raise
        finally:
            self._stop()
            log.info("worker.stopped", reason=exit_reason)

    def _poll_once(self) -> None:
        wanted = max(1, min(SQS_RECEIVE_LIMIT, self._dispatcher.free_slots()))
        messages = self._receive(wanted)
        if not messages:
            return
        self._in_flight.add(messages)
        if self._shutdown.is_requested():
            # The long poll returned after the stop signal: these were never started, give them back.
            self._settler.release(messages)
            return
        self._dispatcher.dispatch(messages)

    def _receive(self, wanted: int) -> list[InboundMessage]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=self._receive_wait_seconds,
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

    def _stop(self) -> None:
        unstarted = self._dispatcher.drain(self._grace_seconds)
        if unstarted:
            self._settler.release(unstarted)
        self._settler.close()
        self._heartbeat.stop()
        log.info("worker.drained", released=len(unstarted), still_owned=len(self._in_flight))
