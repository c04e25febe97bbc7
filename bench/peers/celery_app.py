"""Celery on its SQS transport: ``python -m celery -A bench.peers.celery_app worker --pool threads -c 10``.

The queue is predefined (its URL given), as the kombu docs advise for queues that already exist;
everything else is Celery's defaults (early acknowledgement, prefetch multiplier 4, 10 s long polls).
The thread pool gives ten jobs at a time in one process, like the fleet's pool.
"""

from __future__ import annotations

import os
from typing import Final

from celery import Celery

from bench.peers.effects import run_job

TASK: Final = "bench.job"
QUEUE: Final = os.environ.get("BENCH_QUEUE_NAME", "celery")

app = Celery("bench", broker="sqs://")
app.conf.update(
    broker_transport_options={
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "predefined_queues": {QUEUE: {"url": os.environ.get("BENCH_QUEUE_URL", "")}},
    },
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name=TASK)  # type: ignore[untyped-decorator]
def job(job_id: str, seconds: float) -> None:
    run_job(job_id, seconds)
