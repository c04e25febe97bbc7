"""An HTTP proxy between the workers and the emulator that counts AWS calls and injects faults.

It lets the local fleet, the reliability suite and the benchmarks observe and disturb the real
workers from outside, without a line of test code in them: the workers only see ``AWS_ENDPOINT_URL``
pointing here. Faults are decided per request, by operation:

- ``throttle`` (400 ThrottlingException) and ``unavailable`` (503) answer without forwarding;
- ``reset_before`` drops the connection before forwarding (the request never happened);
- ``reset_after`` forwards, lets the emulator apply the request, then drops the connection: the
  classic "deleted, but the client saw an error";
- ``delay`` waits ``seconds`` (default 0.5), then forwards: a slow, not failing, service;
- ``slow_answer`` forwards at once (SQS starts a received message's visibility then) and answers
  ``seconds`` later, as a slow network path back to the worker would;
- ``conflict`` (400 TransactionConflictException, what DynamoDB answers a write racing a transaction on
  the same item) answers without forwarding; it is not part of the fleet's random fault mix.

Control endpoints: ``GET /__proxy__/stats`` (calls and injected faults by operation, and calls by
operation and the queue, table or log group they name, ``"SendMessageBatch my-queue"``) and
``POST /__proxy__/faults`` with ``{"rules": [{"operation": "*", "kind": "throttle", "rate": 0.05}]}``; a
rule may also say ``"matching": "<text>"`` (only requests whose body contains it: one kind of UpdateItem)
and ``"times": n`` (inject at most n times).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs

#: The kinds that fail a request (scenarios spread a fault rate over these).
FAULT_KINDS: Final = ("throttle", "unavailable", "reset_before", "reset_after")
#: Every kind a rule may name: the failures, ``delay``, and two kinds beyond the random mix.
RULE_KINDS: Final = (*FAULT_KINDS, "delay", "conflict", "slow_answer")
_ERRORS: Final = {
    "throttle": (400, "ThrottlingException"),
    "conflict": (400, "TransactionConflictException"),
    "unavailable": (503, "ServiceUnavailable"),
}
CONTROL_PREFIX: Final = "/__proxy__/"
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Inject ``kind`` into ``operation`` (``*`` for all; ``service:*`` for one service) at ``rate``."""

    operation: str
    kind: str
    rate: float = 1.0
    #: Only requests whose body contains this text; empty: every request of the operation.
    matching: str = ""
    #: Inject at most this many times; None: until the rules change.
    times: int | None = None
    #: ``delay``: how long the request is held before forwarding (default 0.5); ``slow_answer``: how long
    #: the answer is held back.
    seconds: float = 0.0

    def matches(self, service: str, operation: str, body: bytes = b"") -> bool:
        return self.operation in {"*", operation, f"{service}:*", f"{service}:{operation}"} and (
            self.matching.encode() in body
        )


class ProxyState:
    def __init__(self, seed: int = 1) -> None:
        self.calls: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        #: "<operation> <resource name>": which queue, table or log group each call named.
        self.targets: Counter[str] = Counter()
        self.rules: list[FaultRule] = []
        self._injected_by_rule: Counter[int] = Counter()
        self._rng = random.Random(seed)  # noqa: S311 - repeatable fault patterns, not security
        self._lock = threading.Lock()

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        parsed = [
            FaultRule(
                str(r["operation"]),
                str(r["kind"]),
                float(r.get("rate", 1.0)),
                str(r.get("matching", "")),
                int(r["times"]) if r.get("times") is not None else None,
                float(r.get("seconds", 0.5 if r["kind"] == "delay" else 0.0)),
            )
            for r in rules
        ]
        unknown = [rule.kind for rule in parsed if rule.kind not in RULE_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(RULE_KINDS)}")
        with self._lock:
            self.rules = parsed
            self._injected_by_rule.clear()

    def decide(self, service: str, operation: str, body: bytes = b"") -> str | None:
        rule = self.decide_rule(service, operation, body)
        return rule.kind if rule is not None else None

    def decide_rule(self, service: str, operation: str, body: bytes = b"") -> FaultRule | None:
        with self._lock:
            self.calls[operation] += 1
            for index, rule in enumerate(self.rules):
                if rule.times is not None and self._injected_by_rule[index] >= rule.times:
                    continue
                if rule.matches(service, operation, body) and self._rng.random() < rule.rate:
                    self._injected_by_rule[index] += 1
                    self.faults[f"{operation}:{rule.kind}"] += 1
                    return rule
            return None

    def record_targets(self, operation: str, resources: list[str]) -> None:
        with self._lock:
            for resource in resources:
                self.targets[f"{operation} {resource}"] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"calls": dict(self.calls), "faults": dict(self.faults), "targets": dict(self.targets)}


def operation_of(headers: Any, body: bytes) -> tuple[str, str]:  # noqa: ANN401 - http.client headers
    """(service, operation) from an AWS JSON-protocol target header or a query-protocol body."""
    target = headers.get("X-Amz-Target", "")
    if target:
        prefix, _, operation = target.partition(".")
        return ("sqs" if prefix.startswith("AmazonSQS") else "logs" if prefix.startswith("Logs") else prefix), operation
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", ["Unknown"])[0]
    return "query", action


def resources_of(body: bytes) -> list[str]:
    """The queue, table and log group names a JSON-protocol request body names (SQS, DynamoDB, Logs)."""
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    found = [str(document["QueueUrl"]).rsplit("/", 1)[-1]] if "QueueUrl" in document else []
    found += [str(document[key]) for key in ("TableName", "logGroupName") if key in document]
    for item in document.get("TransactItems", []):
        found += [
            str(action["TableName"]) for action in item.values() if isinstance(action, dict) and "TableName" in action
        ]
    return sorted(set(found))


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ANN401 - stdlib signature
        return  # the proxy is quiet; its counts are the output

    def do_GET(self) -> None:
        if self.path == CONTROL_PREFIX + "stats":
            self._reply(200, json.dumps(self.server.state.snapshot()).encode(), "application/json")
        else:
            self._forward(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == CONTROL_PREFIX + "faults":
            self._configure(body)
            return
        self._forward(body)

    def _configure(self, body: bytes) -> None:
        try:
            self.server.state.set_rules(json.loads(body or b"{}").get("rules", []))
        except (ValueError, KeyError, TypeError) as error:
            self._reply(400, str(error).encode(), "text/plain")
            return
        self._reply(204, b"", "text/plain")

    def _forward(self, body: bytes) -> None:
        service, operation = operation_of(self.headers, body)
        self.server.state.record_targets(operation, resources_of(body))
        rule = self.server.state.decide_rule(service, operation, body)
        fault = rule.kind if rule is not None else None
        if rule is not None and fault == "delay":
            time.sleep(rule.seconds)
        if fault == "reset_before":
            self.close_connection = True
            return
        if fault in _ERRORS:
            self._error(fault)
            return
        status, headers, payload = self._upstream(body)
        if fault == "reset_after":
            self.close_connection = True
            return
        if rule is not None and fault == "slow_answer":
            time.sleep(rule.seconds)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _upstream(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _error(self, fault: str) -> None:
        status, code = _ERRORS[fault]
        payload = json.dumps({"__type": code, "message": f"injected by the local AWS proxy: {code}"}).encode()
        self.send_response(status)
        self.send_header("x-amzn-query-error", f"{code};Sender")
        self._reply_body(payload, "application/x-amz-json-1.0")

    def _reply(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self._reply_body(payload, content_type)

    def _reply_body(self, payload: bytes, content_type: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream_port: int, state: ProxyState) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream_port = upstream_port
        self.state = state


class AwsProxy:
    """Runs the proxy on a background thread; ``port`` 0 picks a free one."""

    def __init__(self, *, upstream_port: int, port: int = 0, seed: int = 1) -> None:
        self.state = ProxyState(seed)
        self._server = _ProxyServer(port, upstream_port, self.state)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-proxy", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AwsProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
