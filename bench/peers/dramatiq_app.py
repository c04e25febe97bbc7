"""dramatiq with dramatiq_sqs, as a user runs it: ``python -m dramatiq bench.peers.dramatiq_app --threads 10``.

The broker and actor are module-level, as dramatiq's CLI expects; boto3 finds the emulator through
AWS_ENDPOINT_URL like every other process of the bench. The SQS queue is ``<namespace>_<queue>``.
"""

from __future__ import annotations

import os
from typing import Final

import dramatiq
from dramatiq_sqs import SQSBroker

from bench.peers.effects import run_job

NAMESPACE: Final = "bench"
QUEUE: Final = "jobs"
ACTOR: Final = "job"

broker = SQSBroker(namespace=NAMESPACE, region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
def job(job_id: str, seconds: float) -> None:
    run_job(job_id, seconds)
