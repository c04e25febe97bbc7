"""main_job's assembly: the trigger path touches SQS only, never the job ledger (issue 28)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from common.names import MAIN_JOB_SERVICE
from common.sqs.shutdown import Shutdown
from main_job import service
from tests.conftest import AwsFleet
from tests.consumer_thread import consumer_running
from tests.waiting import wait_until


@pytest.fixture
def dynamodb_calls(aws_fleet: AwsFleet) -> Iterator[collections.Counter[str]]:
    """Every DynamoDB request made from now on, by operation: on the fleet's client and on any client the
    code under test creates from boto3's default session (a client copies the session's hooks when made)."""
    calls: collections.Counter[str] = collections.Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    # The session boto3.client() creates clients from, as common/aws.py does.
    events = boto3._get_default_session().events
    events.register("before-call.dynamodb", count, unique_id="main-job-dynamodb-calls")
    aws_fleet.dynamodb.meta.events.register("before-call.dynamodb", count, unique_id="main-job-dynamodb-calls")
    try:
        yield calls
    finally:
        events.unregister("before-call.dynamodb", unique_id="main-job-dynamodb-calls")
        aws_fleet.dynamodb.meta.events.unregister("before-call.dynamodb", unique_id="main-job-dynamodb-calls")


def test_main_job_enqueues_jobs_without_a_single_dynamodb_request(
    aws_fleet: AwsFleet, dynamodb_calls: collections.Counter[str]
) -> None:
    """Even told JOB_LEDGER_TABLE, main_job writes no queued item: the worker's claim creates the job's item."""
    shutdown = Shutdown()
    settings = aws_fleet.ledger_settings(MAIN_JOB_SERVICE, receive_wait_seconds=1)
    consumer = service.build(settings, shutdown, sqs=aws_fleet.sqs)
    for name in ("a", "b", "c"):
        aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.trigger, MessageBody=f'{{"trigger":"{name}"}}')
    with consumer_running(consumer, shutdown):
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.trigger) == (0, 0), timeout=60, what="triggers settled")

    assert 3 == len(aws_fleet.receive_all(aws_fleet.urls.background))
    assert {} == dict(dynamodb_calls)
    table = aws_fleet.dynamodb.scan(TableName=aws_fleet.names.job_ledger_table, ConsistentRead=True)
    assert [] == table["Items"]
