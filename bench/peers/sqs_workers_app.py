"""Doist's sqs-workers: ``python -m bench.peers.sqs_workers_app``.

sqs-workers (0.5) runs one queue per process, each process handling its receive batch of up to ten
messages one after another and deleting them in one batch. Its way to run ten jobs at a time is ten
processes on the queue, which is what this starts (as ``SQSEnv.process_queues`` does for several
queues): each child builds its own ``SQSEnv`` after the fork, so no connection is shared.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from types import FrameType
from typing import Final

from sqs_workers import SQSEnv

from bench.peers import env
from bench.peers.effects import run_job

JOB_NAME: Final = "job"
CONTENT_TYPE: Final = "json"


def _consume() -> None:
    sqs = SQSEnv(codec=CONTENT_TYPE)
    queue = sqs.queue(env.queue_name())

    @queue.processor(JOB_NAME)
    def job(job_id: str, seconds: float) -> None:
        run_job(job_id, seconds)

    queue.process_queue(wait_second=env.receive_wait_seconds())


def main() -> int:
    children = [multiprocessing.Process(target=_consume, daemon=True) for _ in range(env.concurrency())]
    for child in children:
        child.start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for child in children:
            child.terminate()  # sqs-workers has no graceful stop of its own: SIGTERM ends a process
        for child in children:
            child.join(timeout=10)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        child.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
