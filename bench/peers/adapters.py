"""How each peer is started and how its messages look: the one place that knows the peers apart.

Each adapter encodes a job the way the peer's own enqueue call would (using the peer's own message
classes where it has them), so the bench can fill the peer's queue with SendMessageBatch from its own,
uncounted client, exactly as it fills the fleet's queue.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from bench.workloads import IO_200MS, Workload
from common.messages import BackgroundJob

#: An SQS SendMessageBatch entry without its Id.
Entry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Peer:
    """One pipeline of the peer table."""

    name: str
    #: Distributions whose installed versions the results record.
    distributions: tuple[str, ...]
    command: Callable[[int, str], list[str]]
    encode: Callable[[str, Workload, int], Entry]
    #: The SQS queue name; None for the fleet, which consumes its own provisioned background queue.
    queue_name: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: The limit its no-op rows are a share of: the ceiling of its own request sequence.
    noop_ceiling: str = "peer-ceiling"


def seconds(workload: Workload) -> float:
    return float(workload.data.get("seconds", 0.0)) if workload is IO_200MS else 0.0


def _fleet_entry(job_id: str, workload: Workload, number: int) -> Entry:
    job = BackgroundJob(
        job_id=job_id,
        job_type=workload.job_type,
        correlation_id=job_id,
        trigger=json.loads(workload.trigger_body(number)),
        enqueued_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    return {"MessageBody": job.to_body(), "MessageAttributes": job.message_attributes()}


def _plain_entry(job_id: str, workload: Workload, _number: int) -> Entry:
    return {"MessageBody": json.dumps({"jobId": job_id, "seconds": seconds(workload)})}


def _sqs_workers_entry(job_id: str, workload: Workload, _number: int) -> Entry:
    from bench.peers.sqs_workers_app import CONTENT_TYPE, JOB_NAME  # noqa: PLC0415 - a peer's import

    return {
        "MessageBody": json.dumps({"job_id": job_id, "seconds": seconds(workload)}),
        "MessageAttributes": {
            "ContentType": {"StringValue": CONTENT_TYPE, "DataType": "String"},
            "JobContext": {"StringValue": "{}", "DataType": "String"},
            "JobName": {"StringValue": JOB_NAME, "DataType": "String"},
        },
    }


def _dramatiq_entry(job_id: str, workload: Workload, _number: int) -> Entry:
    import dramatiq  # noqa: PLC0415 - a peer's import

    from bench.peers.dramatiq_app import ACTOR, QUEUE  # noqa: PLC0415

    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=QUEUE, actor_name=ACTOR, args=(job_id, seconds(workload)), kwargs={}, options={}
    )
    return {"MessageBody": base64.b64encode(message.encode()).decode()}  # as SQSBroker.enqueue encodes it


@cache
def _celery_encoder() -> Any:  # noqa: ANN401 - a Celery app
    from celery import Celery  # noqa: PLC0415 - a peer's import

    return Celery("bench-encoder", broker="memory://")


def _celery_entry(job_id: str, workload: Workload, _number: int) -> Entry:
    """Celery's own envelope: published on kombu's in-memory transport, then SQS-encoded as kombu's ``_put`` does."""
    from bench.peers.celery_app import TASK  # noqa: PLC0415 - a peer's import

    app = _celery_encoder()
    app.send_task(TASK, args=[job_id, seconds(workload)], queue=CELERY_QUEUE)
    with app.connection_for_write() as connection:
        # The in-memory transport keeps the envelope on kombu's virtual channel.
        envelope = connection.default_channel._get(CELERY_QUEUE)
    return {"MessageBody": base64.b64encode(json.dumps(envelope).encode()).decode()}


def _pyqs_entry(job_id: str, workload: Workload, _number: int) -> Entry:
    # What pyqs.decorator.task_delayer sends.
    return {
        "MessageBody": json.dumps(
            {"task": "bench.peers.effects.run_job", "args": [job_id, seconds(workload)], "kwargs": {}}
        )
    }


def _module(name: str, *args: str) -> Callable[[int, str], list[str]]:
    return lambda _concurrency, _queue: [sys.executable, "-m", name, *args]


CELERY_QUEUE: Final = "bench-celery"

PEERS: Final = {
    "fleet-bg": Peer(
        "fleet-bg",
        ("message-driven-fleet",),
        _module("bench.peers.fleet_app"),
        _fleet_entry,
        noop_ceiling="peer-ceiling-logs",
    ),
    "sqs-workers": Peer(
        "sqs-workers",
        ("sqs-workers",),
        _module("bench.peers.sqs_workers_app"),
        _sqs_workers_entry,
        queue_name="bench-sqs-workers",
    ),
    "dramatiq": Peer(
        "dramatiq",
        ("dramatiq", "dramatiq-sqs"),
        lambda concurrency, _queue: [
            sys.executable,
            "-m",
            "dramatiq",
            "bench.peers.dramatiq_app",
            "--processes",
            "1",
            "--threads",
            str(concurrency),
            "--queues",
            "jobs",
        ],
        _dramatiq_entry,
        queue_name="bench_jobs",
    ),
    "celery": Peer(
        "celery",
        ("celery", "kombu", "pycurl"),
        lambda concurrency, queue: [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.peers.celery_app",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        _celery_entry,
        queue_name=CELERY_QUEUE,
        env={"BENCH_COUNT_KOMBU": "1"},
    ),
    "pyqs": Peer(
        "pyqs",
        ("pyqs",),
        lambda concurrency, queue: [
            sys.executable,
            "-c",
            "import sys; from pyqs.main import main; sys.exit(main())",
            queue,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
        ],
        _pyqs_entry,
        queue_name="bench-pyqs",
    ),
    "peer-ceiling": Peer(
        "peer-ceiling", (), _module("bench.peers.ceiling_app"), _plain_entry, queue_name="bench-ceiling"
    ),
    "peer-ceiling-logs": Peer(
        "peer-ceiling-logs",
        (),
        _module("bench.peers.ceiling_app", "--logs"),
        _plain_entry,
        queue_name="bench-ceiling",
    ),
}
