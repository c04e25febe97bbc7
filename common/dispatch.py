"""Dispatchers run handler code on received deliveries and record each outcome on its lease.

The consumer asks a dispatcher how many slots are free and receives no more than that, so no message
sits invisible in a local buffer while its visibility timeout runs out. Whatever runs a job records
its outcome in a ``finally`` (:meth:`Lease.finish`); settling is the consumer's job, on its own thread.

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

from common.in_flight import Lease
from common.inbound import InboundMessage
from common.logging import bound_context, get_logger
from common.messages import MalformedMessage
from common.outcome import Outcome, Verdict
from common.settings import DEFAULT_BATCH_WINDOW_SECONDS

log = get_logger(__name__)
SQS_RECEIVE_LIMIT = 10
#: Receiving the moment one slot frees makes every ReceiveMessage and DeleteMessageBatch carry two or
#: three messages. A busy pool therefore waits for a full batch's worth of free slots for as long as its
#: jobs keep finishing within the batch window (BATCH_WINDOW_SECONDS) of each other (jobs received
#: together finish together), and never longer than this many windows in all. An idle pool never
#: waits. Compare Lambda's MaximumBatchingWindowInSeconds.
BATCH_WAIT_CAP_IN_WINDOWS = 5
#: A deferred batch (main_job's SendMessageBatch failing) is tried again after 1, 2, 4 ... seconds, at most this.
MAX_DEFER_SECONDS = 30.0

MessageHandler = Callable[[InboundMessage], Outcome]
BatchHandler = Callable[[Sequence[InboundMessage]], Mapping[str, Outcome]]
_ENDED_ABRUPTLY = Outcome.retry("the job ended without an outcome (BaseException)")


class Dispatcher(Protocol):
    def free_slots(self) -> int: ...

    def wait_for_free_slot(self, timeout: float) -> bool:
        """True when the consumer may receive now; may run work held back earlier (deferred batches)."""
        ...

    def dispatch(self, leases: Sequence[Lease]) -> None: ...

    def cancel_unstarted(self) -> list[Lease]:
        """Stop taking work; return the leases that never started, for release."""
        ...

    def wait_until_idle(self, timeout: float) -> bool:
        """True once nothing is running; waits at most ``timeout`` seconds."""
        ...

    def abandon(self) -> list[Lease]:
        """Stop without waiting; return the leases still running (they settle themselves when they end)."""
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
    """Runs the batch handler in the loop thread; a deferred batch holds receiving until it goes through."""

    def __init__(self, handler: BatchHandler) -> None:
        self._handler = handler
        self._held: list[Lease] = []
        self._defers = 0
        self._retry_at = 0.0

    def free_slots(self) -> int:
        return 0 if self._held else SQS_RECEIVE_LIMIT

    def wait_for_free_slot(self, timeout: float) -> bool:
        if not self._held:
            return True
        delay = self._retry_at - time.monotonic()
        if delay > timeout:
            time.sleep(timeout)  # the loop wakes to touch its liveness file and check for shutdown
            return False
        time.sleep(max(0.0, delay))
        held, self._held = self._held, []
        self.dispatch(held)
        return not self._held

    def dispatch(self, leases: Sequence[Lease]) -> None:
        outcomes: Mapping[str, Outcome] = {}
        try:
            outcomes = self._handler([lease.message for lease in leases])
        except Exception as error:
            log.exception("batch.handler_crashed", messages=len(leases), error_type=type(error).__name__)
        finally:
            for lease in leases:
                outcome = outcomes.get(lease.message.message_id) or Outcome.retry("handler returned no outcome")
                if outcome.verdict is Verdict.DEFER:
                    self._held.append(lease)
                else:
                    lease.finish(outcome)
        self._schedule_held()

    def _schedule_held(self) -> None:
        if not self._held:
            self._defers = 0
            return
        delay = min(MAX_DEFER_SECONDS, 2.0 ** min(self._defers, 5))
        self._defers += 1
        self._retry_at = time.monotonic() + delay
        log.warning("batch.deferred", messages=len(self._held), retry_in_seconds=delay, receiving_paused=True)

    def cancel_unstarted(self) -> list[Lease]:
        held, self._held = self._held, []
        return held

    def wait_until_idle(self, timeout: float) -> bool:
        return True  # work runs in the loop thread, so nothing is running when the loop asks

    def abandon(self) -> list[Lease]:
        return []


class PoolDispatcher:
    def __init__(
        self,
        handler: MessageHandler,
        concurrency: int,
        batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS,
    ) -> None:
        """``batch_window_seconds=0`` receives as soon as one slot is free: fewest idle slots, most requests."""
        self._handler = handler
        self._concurrency = concurrency
        self._full_batch = min(SQS_RECEIVE_LIMIT, concurrency)
        self._batch_window_seconds = batch_window_seconds
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._running: dict[Future[None], Lease] = {}
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

    def dispatch(self, leases: Sequence[Lease]) -> None:
        with self._condition:
            for lease in leases:
                future = self._executor.submit(self._run, lease)
                self._running[future] = lease
                future.add_done_callback(self._finished)

    def cancel_unstarted(self) -> list[Lease]:
        with self._condition:
            return [lease for future, lease in list(self._running.items()) if future.cancel()]

    def wait_until_idle(self, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: not self._running, timeout=timeout)

    def abandon(self) -> list[Lease]:
        with self._condition:
            abandoned = list(self._running.values())
        # Join the pool's threads unless a job overran its grace period; such a job settles itself.
        self._executor.shutdown(wait=not abandoned, cancel_futures=True)
        return abandoned

    def _run(self, lease: Lease) -> None:
        outcome = _ENDED_ABRUPTLY
        try:
            with bound_context(message_id=lease.message.message_id, receive_count=lease.message.receive_count):
                outcome = run_guarded(self._handler, lease.message)
        finally:
            lease.finish(outcome)

    def _finished(self, future: Future[None]) -> None:
        with self._condition:
            self._running.pop(future, None)
            self._condition.notify_all()
