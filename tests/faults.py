"""Fault injection through the real botocore stack, in front of moto (in-process).

moto answers requests from a ``before-send`` hook. :class:`FaultInjector` takes that hook's place on
one client and decides, per request, whether moto sees it: a throttle or a 5xx is returned without
applying the request, a connection reset is raised before it, and ``reset_after`` applies the request
and then drops the connection (the classic "deleted, but the client saw an error"). Everything above
``before-send`` is real: parsing, botocore's retry mode, our code.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from moto.core.models import botocore_stubber

KINDS = ("throttle", "unavailable", "down", "reset_after", "throughput", "request_limit", "conflict")
#: DynamoDB's documented "slow down" errors (HTTP 400), by kind: an on-demand table scaling, the account's
#: request limit, an UpdateItem racing a transaction on the same item.
_DYNAMODB_ERRORS = {
    "throughput": ("ProvisionedThroughputExceededException", "The level of configured provisioned throughput exceeded"),
    "request_limit": ("RequestLimitExceeded", "Throughput exceeds the current throughput limit for your account"),
    "conflict": ("TransactionConflictException", "Transaction is ongoing for the item"),
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


@dataclass
class _Rule:
    kind: str
    remaining: int | None
    rate: float
    matching: bytes = b""


class FaultInjector:
    """Per-operation faults for one boto3 client backed by moto in-process."""

    def __init__(self, client: Any, seed: int = 7) -> None:
        self._rules: dict[str, _Rule] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", self._before_send)

    def fail(
        self, operation: str, kind: str, *, times: int | None = None, rate: float = 1.0, matching: str = ""
    ) -> None:
        """Make ``operation`` (or ``*``) fail ``times`` times (None: until cleared) with probability ``rate``;
        with ``matching``, only requests whose body contains that text (one kind of UpdateItem, say)."""
        assert kind in KINDS, kind
        with self._lock:
            self._rules[operation] = _Rule(kind, times, rate, matching.encode())

    def clear(self, operation: str | None = None) -> None:
        with self._lock:
            if operation is None:
                self._rules.clear()
            else:
                self._rules.pop(operation, None)

    def _pick(self, operation: str, body: bytes) -> str | None:
        with self._lock:
            rule = self._rules.get(operation) or self._rules.get("*")
            if rule is None or rule.remaining == 0 or rule.matching not in body or self._rng.random() >= rule.rate:
                return None
            if rule.remaining is not None:
                rule.remaining -= 1
            self.injected[operation] = self.injected.get(operation, 0) + 1
            return rule.kind

    def _before_send(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        kind = self._pick(operation, body)
        if kind in _DYNAMODB_ERRORS:
            return _error_response(request.url, 400, *_DYNAMODB_ERRORS[kind])
        if kind == "down":
            raise EndpointConnectionError(endpoint_url=request.url)
        if kind == "throttle":
            return _error_response(request.url, 400, "ThrottlingException", "Rate exceeded")
        if kind == "unavailable":
            return _error_response(request.url, 503, "ServiceUnavailable", "Service is unavailable")
        response = botocore_stubber(event_name=event_name, request=request, **kwargs)
        if kind == "reset_after":
            raise ConnectionClosedError(endpoint_url=request.url)
        return response


def _error_response(url: str, status: int, code: str, message: str) -> AWSResponse:
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}
    return AWSResponse(url, status, headers, _Raw(body))
