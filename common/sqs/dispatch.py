"""Dispatchers run handler code on received deliveries and record each outcome on its lease.

The consumer asks a dispatcher how many messages it may receive now and receives no more than that.
Whatever runs a job records its outcome in a ``finally`` (:meth:`Lease.finish`); settling is the
consumer's job, on its own thread.

- :class:`BatchDispatcher` runs one handler over the whole received batch in the loop thread; main_job
  uses it so that a batch of triggers becomes one SendMessageBatch.
- :class:`PoolDispatcher` runs one handler per message on a bounded thread pool; background_job uses it.

Receive-ahead (PoolDispatcher). A busy pool may receive, besides its free slots, the slots it expects
to free within RECEIVE_AHEAD_HORIZON_SECONDS: running jobs times horizon / mean job time, at most one
receive batch, and a job already running past twice the mean (plus the horizon) never counts. Those
messages wait in a small buffer and start the moment a slot frees, so slots do not sit idle while the
next receive is in flight, and the next receive happens when the buffer is empty and carries a full
batch. Celery's and dramatiq's prefetch problem is a busy worker reserving prefetched messages for as
long as its running jobs take (a 10-minute task pins its prefetch for 10 minutes, invisible to idle
workers, and with acks_late / visibility extension, indefinitely). Here:

- every buffered message is an open lease in InFlight from the moment it is received (the heartbeat
  and the shutdown path know it), and it is released (visibility 0) at once on shutdown;
- a buffered message starts only while its buffer bound has not passed and enough of its visibility is
  left (START_VISIBILITY_SHARE); otherwise it goes to the stale list the consumer releases, never runs.
  After a freeze (SIGSTOP, a stalled host) past the visibility timeout, another worker may have run and
  finished the job meanwhile: starting it would run it twice;
- a buffered message waits at most MAX_BUFFER_WAIT_SECONDS and at most BUFFER_WAIT_SHARE of its
  visibility timeout; then the consumer releases it. The heartbeat extends only leases past half
  their visibility, so it never keeps an unstarted message invisible;
- after such a release nothing more is received ahead until a slot frees, and long jobs drive the
  mean up, so a worker busy with long jobs falls back to receiving only for free slots (the batch
  window below), never churning a message through receives (each release costs one receive count).

When nothing is received ahead (no job has finished yet, or jobs are long), a busy pool waits up to
BATCH_WINDOW_SECONDS, while slots keep freeing, for a full batch of free slots (BATCH_WAIT_CAP_IN_WINDOWS).

Outcomes (PoolDispatcher). The moment a job returns, the hook given to :meth:`PoolDispatcher.watch_returns`
hears of it on the job's thread (the job ledger writes the outcome there), before the outcome's settle
gate (its job log shipping) and before the delete batch. On shutdown the gates are honoured until the
grace period ends; then every lease whose job returned is finished at once, so the consumer settles it
before the process exits.

Time limits (PoolDispatcher, common/sqs/time_limit.py). Given a default limit, every attempt runs under
one; a watchdog thread settles an attempt that passes its deadline as a timeout failure and counts its
slot as lost until the job's thread returns (its late outcome is discarded).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

from common.logging import bound_context, get_logger
from common.messages import MalformedMessage
from common.settings import DEFAULT_BATCH_WINDOW_SECONDS
from common.sqs.in_flight import Lease
from common.sqs.inbound import InboundMessage
from common.sqs.outcome import Outcome, Verdict
from common.sqs.time_limit import Attempt, Fitness, Watchdog, attempt_running

log = get_logger(__name__)
SQS_RECEIVE_LIMIT = 10
#: Receiving the moment one slot frees makes every ReceiveMessage and DeleteMessageBatch carry two or
#: three messages. A busy pool that cannot receive ahead therefore waits for a full batch's worth of
#: free slots for as long as its jobs keep finishing within the batch window (BATCH_WINDOW_SECONDS) of
#: each other, and never longer than this many windows in all. An idle pool never waits.
BATCH_WAIT_CAP_IN_WINDOWS = 5
#: Receive ahead only for the slots expected to free within this many seconds (from the mean job time).
RECEIVE_AHEAD_HORIZON_SECONDS = 1.0
#: A message received ahead waits at most this long for a slot, and at most this share of its
#: visibility timeout (so the heartbeat, which extends at half, never extends one); then it is released.
MAX_BUFFER_WAIT_SECONDS = 5.0
BUFFER_WAIT_SHARE = 0.25
#: A buffered message starts only with at least this share of its visibility timeout left: the
#: heartbeat walks the leases every sixth of it, so it gets a turn to extend the job's visibility in time.
START_VISIBILITY_SHARE = 1 / 6
#: Weight of the latest job in the running mean of job durations.
MEAN_WEIGHT = 0.2
#: A deferred batch (main_job's SendMessageBatch failing) is tried again after 1, 2, 4 ... seconds, at most this.
MAX_DEFER_SECONDS = 30.0

MessageHandler = Callable[[InboundMessage], Outcome]
#: What the service makes of an attempt that passed its deadline (its events, metrics and retry verdict).
TimeoutHandler = Callable[[InboundMessage, Attempt], Outcome]
BatchHandler = Callable[[Sequence[InboundMessage]], Mapping[str, Outcome]]
#: Told of each job's outcome the moment it returns, on the job's thread (must not raise).
ReturnedHook = Callable[[Lease, Outcome], None]
_ENDED_ABRUPTLY = Outcome.retry("the job ended without an outcome (BaseException)")


@dataclass(frozen=True, slots=True)
class SlotReport:
    """Slots lost to timed-out jobs, and what they mean for the worker (exit, or fail its health check)."""

    lost: int = 0
    exit_reason: str | None = None
    unhealthy_reason: str | None = None


class Dispatcher(Protocol):
    def free_slots(self) -> int: ...

    def slot_report(self) -> SlotReport:
        """Lost slots and whether the worker should be replaced or report itself unhealthy."""
        ...

    def wait_for_free_slot(self, timeout: float) -> bool:
        """True when the consumer may receive now; may run work held back earlier (deferred batches)."""
        ...

    def dispatch(self, leases: Sequence[Lease]) -> None: ...

    def watch_returns(self, hook: ReturnedHook) -> None:
        """Call ``hook`` with each job's outcome as soon as the job returns, before the lease finishes."""
        ...

    def take_stale(self) -> list[Lease]:
        """Leases received ahead that waited their bound without a slot; the consumer releases them."""
        ...

    def cancel_unstarted(self) -> list[Lease]:
        """Stop taking work; return the leases that never started, for release."""
        ...

    def wait_until_idle(self, timeout: float) -> bool:
        """True once nothing is running; waits at most ``timeout`` seconds."""
        ...

    def abandon(self) -> list[Lease]:
        """Stop without waiting; return the leases still running (they settle themselves when they end).

        Leases whose job returned and that wait on a settle gate are finished at once.
        """
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

    def slot_report(self) -> SlotReport:
        return SlotReport()  # the batch runs in the loop thread: a hung handler stops the loop (and its heartbeat file)

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

    def watch_returns(self, hook: ReturnedHook) -> None:
        return  # main_job's batches record nothing per job; their outcomes are final when the batch returns

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

    def take_stale(self) -> list[Lease]:
        return []  # held batches are heartbeated work in progress, not unstarted messages received ahead

    def cancel_unstarted(self) -> list[Lease]:
        held, self._held = self._held, []
        return held

    def wait_until_idle(self, timeout: float) -> bool:
        return True  # work runs in the loop thread, so nothing is running when the loop asks

    def abandon(self) -> list[Lease]:
        return []


class PoolDispatcher:
    """One handler call per message on ``concurrency`` threads, with a bounded receive-ahead buffer."""

    def __init__(
        self,
        handler: MessageHandler,
        concurrency: int,
        batch_window_seconds: float = DEFAULT_BATCH_WINDOW_SECONDS,
        *,
        ahead_horizon_seconds: float = RECEIVE_AHEAD_HORIZON_SECONDS,
        max_buffer_wait_seconds: float = MAX_BUFFER_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        time_limit_seconds: float | None = None,
        on_timeout: TimeoutHandler | None = None,
        fitness: Fitness | None = None,
    ) -> None:
        """``batch_window_seconds=0`` receives as soon as one slot is free when nothing may be received ahead.

        ``time_limit_seconds`` turns time limits on: the default limit of every attempt (a handler may set
        its own, see common/sqs/time_limit.py); ``on_timeout`` reports a timed-out attempt and picks its
        outcome; ``fitness`` says when lost slots make the worker unfit.
        """
        self._handler = handler
        self._concurrency = concurrency
        self._full_batch = min(SQS_RECEIVE_LIMIT, concurrency)
        self._batch_window_seconds = batch_window_seconds
        self._horizon = ahead_horizon_seconds
        self._max_buffer_wait = max_buffer_wait_seconds
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._running: dict[Future[None], Lease] = {}
        self._started_at: dict[Lease, float] = {}
        #: Leases received ahead, oldest first, each with the time after which it is released unstarted.
        self._buffer: deque[tuple[float, Lease]] = deque()
        #: Leases whose job has ended, waiting for their outcome's settle gate; they hold no slot.
        self._settling: dict[Lease, Outcome] = {}
        #: Set at :meth:`abandon`: a job returning from then on finishes at once, its gate unwaited.
        self._ungated = False
        #: Buffered leases found stale as a slot freed (:meth:`_start_buffered`): released, never run.
        self._stale: list[Lease] = []
        self._on_returned: ReturnedHook | None = None
        self._mean_job_seconds: float | None = None
        #: Set when buffered work went stale: no receiving ahead until a slot frees again.
        self._ahead_suppressed = False
        self._closed = False
        self._condition = threading.Condition()
        self._time_limit = time_limit_seconds
        self._on_timeout = on_timeout
        self._fitness = fitness
        self._attempts: dict[Future[None], Attempt] = {}
        #: Attempts that timed out while their thread still runs: each holds a pool thread, a lost slot.
        self._lost: dict[Future[None], Attempt] = {}
        #: Started with the first dispatch: a dispatcher that never runs a job keeps no thread.
        self._watchdog = Watchdog(self._expire_overdue) if time_limit_seconds is not None else None

    def free_slots(self) -> int:
        """How many messages the consumer may receive now: free slots plus the receive-ahead allowance."""
        with self._condition:
            return self._room()

    def buffered(self) -> list[Lease]:
        """The leases received ahead and not started yet (each one an open lease in InFlight)."""
        with self._condition:
            return [lease for _, lease in self._buffer]

    def wait_for_free_slot(self, timeout: float) -> bool:
        """Wait until the buffer is empty and there is room, then briefly for a fuller batch if needed."""
        with self._condition:
            wait = min(timeout, max(0.0, self._next_stale_at() - self._clock()))
            ready = self._condition.wait_for(
                lambda: self._stale or (not self._buffer and self._room() > 0), timeout=wait
            )
            if not ready or self._stale:
                return False  # stale leases first: the consumer releases them before it receives more
            self._wait_for_fuller_batch()
            return True

    def watch_returns(self, hook: ReturnedHook) -> None:
        self._on_returned = hook

    def take_stale(self) -> list[Lease]:
        """Remove and return buffered leases that waited their bound (or were found stale as a slot freed);
        the consumer releases them at once."""
        with self._condition:
            now = self._clock()
            stale = [*self._stale, *(lease for deadline, lease in self._buffer if deadline <= now)]
            self._stale = []
            if stale:
                self._buffer = deque(entry for entry in self._buffer if entry[0] > now)
                self._ahead_suppressed = True
        if stale:
            log.warning("dispatch.buffer_stale", messages=len(stale), released=True)
        return stale

    def _next_stale_at(self) -> float:
        if self._stale:
            return self._clock()
        return self._buffer[0][0] if self._buffer else float("inf")

    def _wait_for_fuller_batch(self) -> None:
        """Called holding the condition: wait while slots keep freeing, until a full batch or the cap."""
        deadline = time.monotonic() + BATCH_WAIT_CAP_IN_WINDOWS * self._batch_window_seconds
        while (free := self._room()) < self._full_batch:
            window = min(self._batch_window_seconds, deadline - time.monotonic())
            if window <= 0 or not self._condition.wait_for(lambda: self._room() > free, timeout=window):
                return

    def _busy(self) -> int:
        """Pool threads taken: running attempts and lost slots (timed-out jobs whose thread still runs)."""
        return len(self._running) + len(self._lost)

    def _room(self) -> int:
        room = self._concurrency + self._ahead() - self._busy() - len(self._buffer)
        return max(0, min(SQS_RECEIVE_LIMIT, room))

    def _ahead(self) -> int:
        """Slots expected to free within the horizon, from the mean job time; jobs already overdue never count."""
        mean = self._mean_job_seconds
        if mean is None or self._ahead_suppressed or self._closed:
            return 0
        now, overdue_after = self._clock(), 2 * mean + self._horizon
        on_time = sum(1 for lease in self._running.values() if now - self._started_at.get(lease, now) <= overdue_after)
        return min(self._full_batch, int(on_time * min(1.0, self._horizon / max(mean, 1e-3))))

    def dispatch(self, leases: Sequence[Lease]) -> None:
        if self._watchdog is not None:
            self._watchdog.start()
        with self._condition:
            now = self._clock()
            for lease in leases:
                if self._busy() < self._concurrency:
                    self._start(lease)
                else:
                    bound = min(self._max_buffer_wait, lease.registry.visibility_timeout * BUFFER_WAIT_SHARE)
                    self._buffer.append((now + bound, lease))

    def _start(self, lease: Lease) -> None:
        """Called holding the condition."""
        started = self._started_at[lease] = self._clock()
        attempt = Attempt(started, self._time_limit) if self._time_limit is not None else None
        future = self._executor.submit(self._run, lease, attempt)
        self._running[future] = lease
        if attempt is not None:
            self._attempts[future] = attempt
        future.add_done_callback(self._finished)

    def cancel_unstarted(self) -> list[Lease]:
        with self._condition:
            self._closed = True
            unstarted = [*self._stale, *(lease for _, lease in self._buffer)]
            self._buffer.clear()
            self._stale = []
            return unstarted + [lease for future, lease in list(self._running.items()) if future.cancel()]

    def wait_until_idle(self, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._running and not self._buffer and not self._settling, timeout=timeout
            )

    def abandon(self) -> list[Lease]:
        with self._condition:
            self._closed = self._ungated = True
            abandoned = list(self._running.values())
            hung = bool(self._lost)
            gated, self._settling = list(self._settling.items()), {}
            self._condition.notify_all()
        # The grace period is over: a job that returned settles now, not when its log put ends (the process
        # would exit first and its outcome and delete would never be written).
        for lease, outcome in gated:
            lease.finish(outcome)
        if self._watchdog is not None:
            self._watchdog.stop()
        # Join the pool's threads unless a job overran its grace period (such a job settles itself) or
        # hung past its time limit (already settled; its thread may never return).
        self._executor.shutdown(wait=not abandoned and not hung, cancel_futures=True)
        return abandoned

    def _run(self, lease: Lease, attempt: Attempt | None) -> None:
        outcome = _ENDED_ABRUPTLY
        try:
            with (
                bound_context(message_id=lease.message.message_id, receive_count=lease.message.receive_count),
                attempt_running(attempt) if attempt is not None else nullcontext(),
            ):
                outcome = run_guarded(self._handler, lease.message)
        finally:
            if self._returned_in_time(attempt):
                self._tell_returned(lease, outcome)
                self._finish_when_ready(lease, outcome)
            else:
                log.warning("job.returned_after_timeout", message_id=lease.message.message_id, outcome_discarded=True)

    def _returned_in_time(self, attempt: Attempt | None) -> bool:
        """Decided under the lock the watchdog takes: a job returns in time, or it timed out, never both."""
        if attempt is None:
            return True
        with self._condition:
            attempt.returned = True
            return not attempt.timed_out

    def slot_report(self) -> SlotReport:
        with self._condition:
            lost = list(self._lost.values())
        if not lost or self._fitness is None:
            return SlotReport(lost=len(lost))
        now = self._clock()
        return SlotReport(
            lost=len(lost),
            exit_reason=self._fitness.exit_reason(self._concurrency, lost, now),
            unhealthy_reason=self._fitness.unhealthy_reason(lost, now),
        )

    def _expire_overdue(self) -> None:
        """The watchdog's turn: settle every attempt past its deadline as timed out; its slot is lost."""
        now = self._clock()
        with self._condition:
            expired = [
                (future, lease, attempt)
                for future, lease in self._running.items()
                if (attempt := self._attempts.get(future)) is not None
                and not attempt.returned
                and now >= attempt.deadline
            ]
            for future, lease, attempt in expired:
                attempt.timed_out = True
                del self._running[future]
                self._started_at.pop(lease, None)
                self._lost[future] = attempt
        for _, lease, attempt in expired:
            lease.finish(self._timed_out(lease, attempt))

    def _timed_out(self, lease: Lease, attempt: Attempt) -> Outcome:
        fallback = Outcome.retry(f"timed out after {attempt.limit_seconds:g} s")
        if self._on_timeout is None:
            return fallback
        try:
            return self._on_timeout(lease.message, attempt)
        except Exception:
            log.exception("dispatch.timeout_handler_failed", message_id=lease.message.message_id)
            return fallback

    def _tell_returned(self, lease: Lease, outcome: Outcome) -> None:
        """The returned hook (the ledger's outcome write) runs before anything waits on the job's log."""
        if self._on_returned is None:
            return
        try:
            self._on_returned(lease, outcome)
        except Exception:  # a hook must not raise; settlement writes what it did not
            log.exception("dispatch.returned_hook_failed", message_id=lease.message.message_id)

    def _finish_when_ready(self, lease: Lease, outcome: Outcome) -> None:
        """Finish now, or once the outcome's gate lets it (the job's log shipped): the slot frees at once.

        Until then the lease counts as work in progress for :meth:`wait_until_idle`, so a draining
        worker waits for it (the gate has its own bound) instead of exiting with it unsettled; once the
        pool is abandoned (the grace period ended) nothing waits on a gate any more.
        """
        gate = outcome.settle_after
        with self._condition:
            ungated = gate is None or self._ungated
            if not ungated:
                self._settling[lease] = outcome
        if gate is None or ungated:
            lease.finish(outcome)
            return

        def finish() -> None:  # safe to call twice (a gate that failed after calling it): finish is first-wins
            lease.finish(outcome)
            with self._condition:
                self._settling.pop(lease, None)
                self._condition.notify_all()

        try:
            gate(finish)
        except Exception:
            log.exception("dispatch.settle_gate_failed", message_id=lease.message.message_id)
            finish()

    def _finished(self, future: Future[None]) -> None:
        with self._condition:
            lease = self._running.pop(future, None)
            started = self._started_at.pop(lease, None) if lease is not None else None
            if started is not None and not future.cancelled():
                self._record(self._clock() - started)
            self._attempts.pop(future, None)
            if (lost := self._lost.pop(future, None)) is not None:
                log.warning("dispatch.slot_recovered", hung_seconds=round(self._clock() - lost.deadline, 1))
            self._ahead_suppressed = False
            self._start_buffered()
            self._condition.notify_all()

    def _start_buffered(self) -> None:
        """Called holding the condition: start buffered leases into free slots, oldest first, unless stale."""
        now = self._clock()
        while self._buffer and not self._closed and self._busy() < self._concurrency:
            deadline, lease = self._buffer.popleft()
            if deadline <= now or not _visible_long_enough(lease):
                self._stale.append(lease)  # released by the consumer (take_stale), never run here
                continue
            self._start(lease)

    def _record(self, seconds: float) -> None:
        mean = self._mean_job_seconds
        self._mean_job_seconds = seconds if mean is None else mean + MEAN_WEIGHT * (seconds - mean)


def _visible_long_enough(lease: Lease) -> bool:
    """Whether the delivery stays invisible long enough for the heartbeat to extend it once it runs.

    A lease whose visibility ran out (the process was frozen, or a slot freed only after a long stall)
    may already be another worker's delivery, whose job may even have finished there.
    """
    return lease.visible_for() >= START_VISIBILITY_SHARE * lease.registry.visibility_timeout
