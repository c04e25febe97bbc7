"""The emulator's ceiling for a consumer of a filled queue: ``python -m bench.peers.ceiling_app [--logs]``.

The least any peer must do per ten jobs: one ReceiveMessage of ten and one DeleteMessageBatch (on a
thread of its own, so the next receive does not wait for it), with each job's side effect recorded
and no framework at all. ``--logs`` adds what the fleet does on top, one CreateLogStream and one
PutLogEvents per job on ``BENCH_CONCURRENCY`` threads, so the fleet's background worker can be read
against the ceiling of its own request sequence. The no-op rows of the peer table are a share of these.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from types import FrameType
from typing import Any

import boto3
from botocore.config import Config

from bench.peers import env
from bench.peers.effects import record
from common.job_log.log import job_stream_name


def _job_id(message: dict[str, Any]) -> str:
    return str(json.loads(message["Body"])["jobId"])


def _log_job(logs: Any, group: str, job_id: str) -> None:  # noqa: ANN401 - a boto3 client
    stream = job_stream_name(job_id)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(time.time() * 1000), "message": f'{{"jobId":"{job_id}"}}'}],
    )


def _run_batch(messages: list[dict[str, Any]], pool: Executor | None, logs: Any) -> None:  # noqa: ANN401
    started = time.monotonic()
    job_ids = [_job_id(message) for message in messages]
    if pool is not None:
        list(pool.map(lambda job_id: _log_job(logs, os.environ[env.LOG_GROUP_ENV], job_id), job_ids))
    for job_id in job_ids:
        record(job_id, started)


def main(argv: list[str] | None = None) -> int:
    with_logs = "--logs" in (sys.argv[1:] if argv is None else argv)
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    config = Config(max_pool_connections=env.concurrency() + 4)
    sqs = boto3.client("sqs", config=config)
    logs = boto3.client("logs", config=config) if with_logs else None
    url = env.queue_url()
    pool = ThreadPoolExecutor(max_workers=env.concurrency()) if with_logs else None
    with ThreadPoolExecutor(max_workers=1) as deleter:
        while not stopping:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=env.receive_wait_seconds()
            ).get("Messages", [])
            if not messages:
                continue
            _run_batch([dict(m) for m in messages], pool, logs)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            deleter.submit(sqs.delete_message_batch, QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
    if pool is not None:
        pool.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
