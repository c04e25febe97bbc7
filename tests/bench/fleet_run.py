"""Both real services embedded in this process on moto, for counting what a batch of jobs costs."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.config

from background_job import service as background_service
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from common.sqs.consumer import Consumer
from common.sqs.shutdown import Shutdown
from main_job import service as main_service
from tests.conftest import REGION, AwsFleet
from tests.waiting import wait_until

BATCH = 10  # SendMessageBatch takes at most ten entries


def uncounted_sqs() -> Any:
    """A second client on the same moto backend: the test's own sends and checks are not the fleet's."""
    return boto3.client("sqs", region_name=REGION, config=botocore.config.Config(max_pool_connections=4))


def send_triggers(sqs: Any, queue_url: str, count: int, job_type: str = "main-job-processing") -> None:
    for first in range(0, count, BATCH):
        entries = [
            {"Id": str(n), "MessageBody": f'{{"trigger":"budget","jobType":"{job_type}","data":{{"n":{n}}}}}'}
            for n in range(first, min(count, first + BATCH))
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def queues_empty(sqs: Any, fleet: AwsFleet) -> bool:
    for url in (fleet.urls.trigger, fleet.urls.background):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if attributes != {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
            return False
    return True


def build_consumers(fleet: AwsFleet, shutdown: Shutdown, *, ledger: bool = False, **overrides: Any) -> list[Consumer]:
    """main_job and background_job exactly as their entry points assemble them, on the counted clients."""
    settings = fleet.ledger_settings if ledger else fleet.settings
    main = main_service.build(settings(MAIN_JOB_SERVICE, **overrides), shutdown, sqs=fleet.sqs)  # no ledger calls
    background = background_service.build(
        settings(BACKGROUND_JOB_SERVICE, **overrides),
        shutdown,
        sqs=fleet.sqs,
        logs=fleet.logs,
        dynamodb=fleet.dynamodb,
    )
    return [main, background]


def _snapshot(fleet: AwsFleet) -> dict[str, int]:
    """A copy of the counts; the worker threads add a key the first time they make a kind of call."""
    while True:
        try:
            return dict(fleet.requests.calls)
        except RuntimeError:  # changed size during the copy: try again
            continue


def run_jobs(fleet: AwsFleet, sqs: Any, jobs: int, *, send: bool = True, timeout: float = 120) -> dict[str, int]:
    """Send ``jobs`` triggers (unless already sent), wait until they are done and deleted; return the calls."""
    before = _snapshot(fleet)
    done_before = before.get("PutLogEvents", 0)
    if send:
        send_triggers(sqs, fleet.urls.trigger, jobs)
    wait_until(lambda: fleet.requests.calls["PutLogEvents"] >= done_before + jobs, timeout=timeout, what="jobs")
    wait_until(lambda: queues_empty(sqs, fleet), timeout=30, what="every message deleted")
    after = _snapshot(fleet)
    return {name: count - before.get(name, 0) for name, count in after.items() if count > before.get(name, 0)}
