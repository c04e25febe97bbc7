"""Consumers' loops on threads for the length of a ``with`` block, started and stopped as a worker runs one."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from common import metrics
from common.sqs.consumer import Consumer
from common.sqs.shutdown import Shutdown

#: Long enough for a drain on a loaded machine; a consumer still alive after it did not stop.
JOIN_SECONDS = 30


@contextmanager
def consumers_running(
    consumers: Sequence[Consumer], shutdown: Shutdown, *, join_seconds: float = JOIN_SECONDS
) -> Iterator[list[threading.Thread]]:
    """Run each consumer on its own thread; at the block's end, stop them and check that every loop returned.

    The stop is the worker's exit (common/worker.py): one shutdown request, then ``metrics.flush_all`` so the
    emitters write what they hold and no metrics timer outlives the test.
    """
    threads = [threading.Thread(target=consumer.run, name=f"consumer-{n}") for n, consumer in enumerate(consumers)]
    for thread in threads:
        thread.start()
    try:
        yield threads
    finally:
        shutdown.request("test finished")
        for thread in threads:
            thread.join(timeout=join_seconds)
        metrics.flush_all()
        assert [] == [thread.name for thread in threads if thread.is_alive()], "consumers that did not stop"


@contextmanager
def consumer_running(consumer: Consumer, shutdown: Shutdown) -> Iterator[threading.Thread]:
    """One consumer on a thread for the block, stopped as :func:`consumers_running` stops them."""
    with consumers_running([consumer], shutdown) as [thread]:
        yield thread
