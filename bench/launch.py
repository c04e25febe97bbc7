"""Start one process under test with a request counter hooked into boto3: ``python -m bench.launch TARGET``.

The issue asks for AWS requests counted with botocore event hooks in the workers. Rather than add
benchmark code to the workers, this launcher registers a ``before-send`` hook on boto3's default
session (which the workers' ``boto3.client`` calls use) and then calls the very ``main()`` the
container entry point calls. ``before-send`` fires once per HTTP attempt, so botocore's retries are
counted too, exactly as a proxy on the wire would count them, without a proxy's extra hop.

The counts are written to the file named by ``BENCH_COUNTS_FILE`` a few times a second and at exit,
replaced atomically so the harness never reads half a file.
"""

from __future__ import annotations

import atexit
import collections
import importlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Final

import boto3

COUNTS_FILE_ENV: Final = "BENCH_COUNTS_FILE"
_WRITE_INTERVAL_SECONDS: Final = 0.25

#: What can be launched: the two real entry points, and the baseline and ceiling loops.
TARGETS: Final = {
    "main_job": "main_job.__main__",
    "background_job": "background_job.__main__",
    "naive-triggers": "bench.naive",
    "naive-jobs": "bench.naive",
    "ceiling-triggers": "bench.ceiling",
    "ceiling-jobs": "bench.ceiling",
}


class CallCounter:
    """Counts HTTP attempts by AWS operation; thread-safe because every job thread sends requests."""

    def __init__(self) -> None:
        self._calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def on_send(self, event_name: str, **_: Any) -> None:  # noqa: ANN401 - botocore's handler signature
        """``before-send.<service>.<Operation>``: returning None lets the request go ahead."""
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self._calls[operation] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)


def install_counter() -> CallCounter:
    """Hook a counter into the default session before any client exists, so every client inherits it."""
    counter = CallCounter()
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None  # noqa: S101 - set up on the line above
    session.events.register("before-send", counter.on_send)
    return counter


def _publish(counter: CallCounter, path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(counter.snapshot()))
    os.replace(temporary, path)


def _publish_periodically(counter: CallCounter, path: Path) -> None:
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(_WRITE_INTERVAL_SECONDS):
            _publish(counter, path)

    threading.Thread(target=loop, name="bench-counts", daemon=True).start()

    def final() -> None:
        stop.set()
        _publish(counter, path)

    atexit.register(final)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in TARGETS:
        print(f"usage: python -m bench.launch {{{','.join(TARGETS)}}}", file=sys.stderr)
        return 2
    counter = install_counter()
    counts_file = os.environ.get(COUNTS_FILE_ENV)
    if counts_file:
        _publish_periodically(counter, Path(counts_file))
    module = importlib.import_module(TARGETS[args[0]])
    entry = module.main
    status: int = entry() if module.__name__.endswith("__main__") else entry(args[0])
    return status


if __name__ == "__main__":
    sys.exit(main())
