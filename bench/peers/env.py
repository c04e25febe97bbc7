"""What the bench tells a peer's processes, besides the AWS variables: queue, concurrency, job log group."""

from __future__ import annotations

import os
from typing import Final

QUEUE_NAME_ENV: Final = "BENCH_QUEUE_NAME"
QUEUE_URL_ENV: Final = "BENCH_QUEUE_URL"
CONCURRENCY_ENV: Final = "BENCH_CONCURRENCY"
RECEIVE_WAIT_ENV: Final = "BENCH_RECEIVE_WAIT_SECONDS"
LOG_GROUP_ENV: Final = "BENCH_LOG_GROUP"


def queue_name() -> str:
    return os.environ[QUEUE_NAME_ENV]


def queue_url() -> str:
    return os.environ[QUEUE_URL_ENV]


def concurrency() -> int:
    return int(os.environ[CONCURRENCY_ENV])


def receive_wait_seconds() -> int:
    return int(os.environ.get(RECEIVE_WAIT_ENV, "5"))
