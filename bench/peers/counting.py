"""Request counting inside a peer's processes, the same way as for the fleet: a botocore ``before-send`` hook.

:mod:`bench.launch` hooks boto3's default session, which is all the fleet uses. The peers build
their own sessions (dramatiq_sqs, sqs-workers) or fork worker processes (dramatiq, PyQS), so here
every botocore client, whatever session made it, gets the hook when it is created: ``install()``
wraps ``botocore.session.Session.create_client``. It runs from ``sitecustomize`` (bench/peers/site)
at interpreter start, before any peer code, so no client escapes it. ``before-send`` fires once per
HTTP attempt, retries included, as for the fleet.

Celery's SQS transport (kombu) signs its receives and deletes with botocore but sends them with its
own asynchronous HTTP client, so ``before-send`` never fires for them; kombu's one place that sends
such a request (``AsyncSQSConnection.make_request``) is counted as well, by operation,
when ``BENCH_COUNT_KOMBU`` is set (Celery only: importing kombu elsewhere would inflate RSS).

Each process writes its counts to ``<BENCH_COUNTS_DIR>/<pid>.json`` a few times a second and at
exit (replaced atomically); a forked child starts from zero with its own file, so the harness sums
the files of every process of the peer.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import os
import threading
from pathlib import Path
from typing import Any, Final

COUNTS_DIR_ENV: Final = "BENCH_COUNTS_DIR"
_WRITE_INTERVAL_SECONDS: Final = 0.25


class Counts:
    """Requests by AWS operation in this process; reset in a forked child."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def add(self, operation: str) -> None:
        with self.lock:
            self.calls[operation] += 1

    def on_send(self, event_name: str, **_: Any) -> None:  # noqa: ANN401 - botocore's handler signature
        """``before-send.<service>.<Operation>``: returning None lets the request go ahead."""
        self.add(event_name.rsplit(".", 1)[-1])

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.calls)

    def reset(self) -> None:
        self.lock = threading.Lock()  # a lock held by another thread at fork time would never be released
        self.calls = collections.Counter()


COUNTS: Final = Counts()


def _hook_botocore() -> None:
    import botocore.session  # noqa: PLC0415 - imported only in a counted process

    original = botocore.session.Session.create_client

    @functools.wraps(original)
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - botocore's own signature
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-send", COUNTS.on_send)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def _hook_kombu() -> None:
    """Count kombu's SQS requests that bypass botocore's sending (Celery only; absent elsewhere)."""
    try:
        from kombu.asynchronous.aws.sqs.connection import AsyncSQSConnection  # noqa: PLC0415
    except ImportError:
        return
    original = AsyncSQSConnection.make_request

    @functools.wraps(original)
    def make_request(self: Any, operation: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        COUNTS.add(str(operation))
        return original(self, operation, *args, **kwargs)  # type: ignore[no-untyped-call]

    setattr(AsyncSQSConnection, "make_request", make_request)  # noqa: B010 - mypy refuses a method assignment


def _publish(directory: Path) -> None:
    path = directory / f"{os.getpid()}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(COUNTS.snapshot()))
    os.replace(temporary, path)


def _start_publishing(directory: Path) -> None:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(_WRITE_INTERVAL_SECONDS):
            _publish(directory)

    threading.Thread(target=loop, name="bench-counts", daemon=True).start()

    def final() -> None:
        stop.set()
        _publish(directory)

    atexit.register(final)


def install_from_env() -> None:
    """Hook every client and publish counts, if ``BENCH_COUNTS_DIR`` is set (a no-op otherwise)."""
    directory = os.environ.get(COUNTS_DIR_ENV)
    if not directory:
        return
    _hook_botocore()
    if os.environ.get("BENCH_COUNT_KOMBU"):
        _hook_kombu()
    _start_publishing(Path(directory))

    def in_child() -> None:
        COUNTS.reset()
        _start_publishing(Path(directory))

    os.register_at_fork(after_in_child=in_child)


def read_counts(directory: Path) -> dict[str, int]:
    """The sum of the latest counts of every process that published into ``directory``."""
    total: collections.Counter[str] = collections.Counter()
    for path in directory.glob("*.json"):
        try:
            total.update({name: int(count) for name, count in json.loads(path.read_text()).items()})
        except (OSError, ValueError):
            continue
    return dict(total)
