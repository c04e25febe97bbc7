"""One retry layer for the job log's CloudWatch Logs calls: this module's, with botocore making one attempt.

The workers' Logs client is configured for botocore's standard retries (4 attempts), and the job log
used to wrap tenacity around them (6 x 4 tries). Here botocore attempts each job-log call exactly once
and :func:`call` owns the retrying, with tenacity, because only the caller knows what is safe to repeat:

- PutLogEvents is not idempotent. When a request was sent and no answer came (read timeout, connection
  closed), it may have been stored; botocore would send it again, and a fault probe found the jobs that
  ran through an emulator freeze with ``job.succeeded`` four times in their streams. :func:`call` never
  repeats such a put; its caller (:mod:`common.job_log.delivery`) re-sends it once, each event marked
  ``"resent": true``, and sends a second unanswered one to the fallback: at most two copies in a stream,
  the second saying what it is.
- Throttling (CreateLogStream's quota is 50 TPS per account and Region), a 5xx answer and a connection
  that was never made are retried here with short jittered backoff, bounded so a job's close never waits
  long; whatever still fails is an outage for the breaker.
- Any other error answer (access denied, a missing log group) is final and not an outage.

The hook is a ``needs-retry`` handler registered first on the client's own event system, active only
while :func:`call` runs on the current thread, so other users of the same client keep botocore's retries.
"""

from __future__ import annotations

import enum
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
)
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_random_exponential

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

T = TypeVar("T")

_HOOK_ID: Final = "job-log-one-attempt"
THROTTLING_CODES: Final = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
#: Attempts per call, by kind of failure. Throttling gets the most: Logs is up, only rate-limited.
THROTTLED_ATTEMPTS: Final = 6
TRANSIENT_ATTEMPTS: Final = 3
#: Full-jitter backoff: attempt n waits up to BACKOFF_BASE * 2**(n-1), at most BACKOFF_CAP. Six throttled
#: attempts wait at most 1.55 s in all, inside the job log's close bound.
BACKOFF_BASE_SECONDS: Final = 0.05
BACKOFF_CAP_SECONDS: Final = 1.0


class Failure(enum.Enum):
    """What a failed attempt says about the request and the service."""

    THROTTLED = "throttled"  # answered: too many requests; not applied
    UNAVAILABLE = "unavailable"  # answered with a 5xx; not applied
    UNSENT = "unsent"  # no connection was made; not applied
    AMBIGUOUS = "ambiguous"  # sent, no answer: it may have been applied
    REJECTED = "rejected"  # answered with a final error (4xx)

    @property
    def is_outage(self) -> bool:
        return self is not Failure.REJECTED


class CallFailed(Exception):
    """A job-log call that failed for good; ``failure`` says how, ``error`` is botocore's."""

    def __init__(self, failure: Failure, error: Exception) -> None:
        super().__init__(f"{failure.value}: {type(error).__name__}: {error}")
        self.failure = failure
        self.error = error

    @property
    def code(self) -> str:
        return error_code(self.error)


class _Unretried(Exception):
    """Carries a failed attempt's error out through botocore's stack, past its retry handler."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


_state = threading.local()
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()


def own_retries(logs: CloudWatchLogsClient) -> None:
    """Install the one-attempt hook on ``logs`` once (botocore would ignore a repeat, but costlier)."""
    if logs in _hooked:
        return
    _hooked.add(logs)
    service = logs.meta.service_model.service_id.hyphenize()
    logs.meta.events.register_first(f"needs-retry.{service}", _stop_botocore_retry, unique_id=_HOOK_ID)


def _stop_botocore_retry(
    response: tuple[Any, dict[str, Any]] | None,
    caught_exception: Exception | None,
    operation: Any,  # noqa: ANN401 - botocore's OperationModel
    **_: Any,  # noqa: ANN401 - the rest of botocore's needs-retry arguments
) -> None:
    if not getattr(_state, "owned", False):
        return
    if caught_exception is not None:
        raise _Unretried(caught_exception)
    if response is not None and response[0].status_code >= 300:
        http, parsed = response
        parsed.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = http.status_code
        raise _Unretried(ClientError(parsed, operation.name))  # type: ignore[arg-type]


@contextmanager
def _owned() -> Iterator[None]:
    _state.owned = True
    try:
        yield
    finally:
        _state.owned = False


def error_code(error: Exception) -> str:
    return str(error.response["Error"].get("Code", "")) if isinstance(error, ClientError) else type(error).__name__


def classify(error: Exception) -> Failure:
    if isinstance(error, ClientError):
        if error_code(error) in THROTTLING_CODES:
            return Failure.THROTTLED
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        return Failure.UNAVAILABLE if status >= 500 else Failure.REJECTED
    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return Failure.UNSENT
    if isinstance(error, ParamValidationError):
        return Failure.REJECTED
    return Failure.AMBIGUOUS


def _attempts(failure: Failure, *, idempotent: bool) -> int:
    if failure is Failure.THROTTLED:
        return THROTTLED_ATTEMPTS
    if failure is Failure.REJECTED or (failure is Failure.AMBIGUOUS and not idempotent):
        return 1
    return TRANSIENT_ATTEMPTS


def call(operation: Callable[[], T], *, idempotent: bool, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``operation`` (one Logs call) with this module's retries; raise :class:`CallFailed` when done trying."""
    retrying = Retrying(
        retry=retry_if_exception_type(_FailedAttempt),
        stop=_stop_for(idempotent=idempotent),
        # Full jitter: attempt n waits a random time up to BACKOFF_BASE * 2**(n-1), at most BACKOFF_CAP.
        wait=wait_random_exponential(multiplier=BACKOFF_BASE_SECONDS, max=BACKOFF_CAP_SECONDS),
        sleep=sleep,
        reraise=True,
    )
    try:
        result: T = retrying(_attempt, operation)
    except _FailedAttempt as last:
        raise CallFailed(last.failure, last.error) from last.error
    return result


class _FailedAttempt(Exception):
    def __init__(self, failure: Failure, error: Exception) -> None:
        super().__init__(str(error))
        self.failure = failure
        self.error = error


def _attempt(operation: Callable[[], T]) -> T:
    try:
        with _owned():
            return operation()
    except _Unretried as unretried:
        error = unretried.error
    except (ClientError, BotoCoreError) as raised:  # refused before sending, or botocore already retried
        error = raised
    raise _FailedAttempt(classify(error), error)


def _stop_for(*, idempotent: bool) -> Callable[[RetryCallState], bool]:
    """How many attempts depends on how the last one failed (see :func:`_attempts`)."""

    def stop(state: RetryCallState) -> bool:
        failed = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(failed, _FailedAttempt):
            return True
        return state.attempt_number >= _attempts(failed.failure, idempotent=idempotent)

    return stop
