"""``python -m tests.reliability.slowed_worker``: background_job with some of its AWS calls held back.

The local proxy can fail a call but not make it slow; a slow answer is what a hung DynamoDB write or a
Logs brownout looks like to the worker. This entry point runs the real background_job (its own
``main``) after registering a botocore ``before-send`` hook on every client it creates, so the delay
sits in the real client stack, in front of the real request: botocore, the proxy and the emulator are
untouched. Configured by environment, set by the scenario that starts the worker:

- ``SLOW_LEASE_WRITE_SECONDS``: a DynamoDB write that extends a ledger lease (it names ``leaseUntilMs``
  and, unlike a claim or an outcome, no ``updatedAt``) waits this long before it is sent, once;
- ``SLOW_PUT_LOG_EVENTS_SECONDS``: every Logs ``PutLogEvents`` waits this long before it is sent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import botocore.session

from background_job.__main__ import main
from common.logging import write_line

ENV_SLOW_LEASE_WRITE = "SLOW_LEASE_WRITE_SECONDS"
ENV_SLOW_PUT_LOG_EVENTS = "SLOW_PUT_LOG_EVENTS_SECONDS"
_LEASE_WRITE_OPERATIONS = ("UpdateItem", "TransactWriteItems")
_lease_writes_held = threading.Semaphore(1)  # only the first lease write hangs


def _hold(seconds: float, what: str) -> None:
    # Through the worker's own locked line writer: a bare print() writes the text and its newline
    # separately, and a worker line written between the two made one unparseable line (a CI flake).
    write_line(sys.stdout, json.dumps({"event": "test.call_held", "call": what, "seconds": seconds}))
    time.sleep(seconds)


def _slow_lease_write(request: Any, event_name: str, **_: Any) -> None:
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    is_lease_write = b"leaseUntilMs" in body and b"updatedAt" not in body
    operation = event_name.rsplit(".", 1)[-1]
    if is_lease_write and operation in _LEASE_WRITE_OPERATIONS and _lease_writes_held.acquire(blocking=False):
        _hold(float(os.environ[ENV_SLOW_LEASE_WRITE]), "ledger lease write")


def _slow_put_log_events(event_name: str, **_: Any) -> None:
    if event_name.endswith(".PutLogEvents"):
        _hold(float(os.environ[ENV_SLOW_PUT_LOG_EVENTS]), "PutLogEvents")


_create_client = botocore.session.Session.create_client


def _create_slowed_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
    client = _create_client(self, *args, **kwargs)
    service = client.meta.service_model.service_name
    if service == "dynamodb" and os.environ.get(ENV_SLOW_LEASE_WRITE):
        client.meta.events.register("before-send", _slow_lease_write)
    if service == "logs" and os.environ.get(ENV_SLOW_PUT_LOG_EVENTS):
        client.meta.events.register("before-send", _slow_put_log_events)
    return client


if __name__ == "__main__":
    botocore.session.Session.create_client = _create_slowed_client  # type: ignore[method-assign]
    sys.exit(main())
