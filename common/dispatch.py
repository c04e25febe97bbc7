"""Dispatchers hand received messages to handler code and report each outcome to the settler.

The consumer asks a dispatcher how many slots are free and receives no more than that, so no message
sits invisible in a local buffer while its visibility timeout runs out.

- :class:`BatchDispatcher` runs one handler over the whole received batch in the loop thread; main_job
  uses it so that a batch of triggers becomes one SendMessageBatch.
- :class:`PoolDispatcher` runs one handler per message on a bounded thread pool; background_job uses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from common.inbound import InboundMessage
from common.logging import bound_context, get_logger
from common.messages import MalformedMessage
from common.settings import DEFAULT_BATCH_WINDOW_SECONDS
from common.settlement import Outcome, Settler

log = get_logger(__name__)
SQS_RECEIVE_LIMIT = 10
#: Receiving the moment one slot frees makes every ReceiveMessage and DeleteMessageBatch carry two or
#: three messages. A busy pool therefore waits for a full batch's worth of free slots for as long as its
#: jobs keep finishing within the batch window (BATCH_WINDOW_SECONDS) of each other (jobs received
#: together finish together), and never longer than this many windows in all. An idle pool never
#: waits. Compare Lambda's MaximumBatchingWindowInSeconds.
BATCH_WAIT_CAP_IN_WINDOWS = 5

MessageHandler = Callable[[InboundMessage], Outcome]
BatchHandler = Callable[[Sequence[InboundMessage]], Mapping[str, Outcome]]


class Dispatcher(Protocol):
    def free_slots(self) -> int: ...

    def wait_for_free_slot(self, timeout: float) -> bool: ...

    def dispatch(self, messages: Sequence[InboundMessage]) -> None: ...

    def drain(self, grace_seconds: float) -> list[InboundMessage]:
        """Let running work finish within the grace period; return the messages never started."""
        ...


def run_guarded(handler: MessageHandler, message: InboundMessage) -> Outcome:
    """A handler bug must cost one retry of one message, never the worker."""
    try:
        return handler(message)
    except MalformedMessage as error:
        return Outcome.quarantine(error.reason)
    except Exception as error:
        log.exception("message.handler_crashed", message_id=message.message_id, error_type=type(error).__name__)
        return Outcome.retry(f"{type(error).__name__}: {error}")


class BatchDispatcher:
    def __init__(self, handler: BatchHandler, settler: Settler) -> None:
        self._handler = handler
        self._settler = settler

    def free_slots(self) -> int:
        return SQS_RECEIVE_LIMIT

    def wait_for_free_slot(self, timeout: float) -> bool:
        return True

    def dispatch(self, messages: Sequence[InboundMessage]) -> None:
        try:
            outcomes = self._handler(messages)
        except Exception as error:
            log.exception("batch.handler_crashed", messages=len(messages), error_type=type(error).__name__)
            outcomes = {}
        for message in messages:
            outcome = outcomes.get(message.message_id) or Outcome.retry("handler returned no outcome")
            self._settler.settle(message, outcome)

    def drain(self, grace_seconds: float) -> list[InboundMessage]:
        return []  # work runs in the loop thread, so nothing is ever left unstarted here


class PoolDispatcher:
    def __init__(
        self,
        handler: MessageHandler,
        settler: Settler,
        concurrency: int,
        batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS,
    ) -> None:
        """``batch_window_seconds=0`` receives as soon as one slot is free: fewest idle slots, most requests."""
        self._handler = handler
        self._settler = settler
        self._concurrency = concurrency
        self._full_batch = min(SQS_RECEIVE_LIMIT, concurrency)
        self._batch_window_seconds = batch_window_seconds
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._running: dict[Future[None], InboundMessage] = {}
        self._condition = threading.Condition()

    def free_slots(self) -> int:
        with self._condition:
            return self._free_slots()

    def wait_for_free_slot(self, timeout: float) -> bool:
        """Wait for one free slot, then briefly for more so that the next receive takes a fuller batch."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._free_slots() > 0, timeout=timeout):
                return False
            self._wait_for_fuller_batch()
            return True

    def _wait_for_fuller_batch(self) -> None:
        """Called holding the condition: wait while slots keep freeing, until a full batch or the cap."""
        deadline = time.monotonic() + BATCH_WAIT_CAP_IN_WINDOWS * self._batch_window_seconds
        while (free := self._free_slots()) < self._full_batch:
            window = min(self._batch_window_seconds, deadline - time.monotonic())
            if window <= 0 or not self._condition.wait_for(lambda: self._free_slots() > free, timeout=window):
                return

    def _free_slots(self) -> int:
        return min(SQS_RECEIVE_LIMIT, self._concurrency - len(self._running))

    def dispatch(self, messages: Sequence[InboundMessage]) -> None:
        with self._condition:
            for message in messages:
                future = self._executor.submit(self._run, message)
                self._running[future] = message
                future.add_done_callback(self._finished)

    def drain(self, grace_seconds: float) -> list[InboundMessage]:
        with self._condition:
            unstarted = [message for future, message in list(self._running.items()) if future.cancel()]
            deadline = time.monotonic() + grace_seconds
            while self._running and (remaining := deadline - time.monotonic()) > 0:
                self._condition.wait(remaining)
            abandoned = list(self._running.values())
        if abandoned:
            log.warning(
                "worker.jobs_abandoned",
                messages=[m.message_id for m in abandoned],
                grace_seconds=grace_seconds,
            )
        # Join the pool's threads unless a job overran its grace period: the process exits either way.
        self._executor.shutdown(wait=not abandoned, cancel_futures=True)
        return unstarted

    def _run(self, message: InboundMessage) -> None:
        with bound_context(message_id=message.message_id, receive_count=message.receive_count):
            outcome = run_guarded(self._handler, message)
        self._settler.settle(message, outcome)

    def _finished(self, future: Future[None]) -> None:
        with self._condition:
            self._running.pop(future, None)
            self._condition.notify_all()
