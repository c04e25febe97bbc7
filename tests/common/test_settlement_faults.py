"""Settling under injected faults: a delete that keeps failing is given up, never retried forever."""

from __future__ import annotations

import boto3
from botocore.config import Config
from structlog.testing import capture_logs

from common.backoff import Backoff
from common.in_flight import InFlight
from common.inbound import InboundMessage
from common.settlement import Outcome, Settler
from tests.conftest import MAX_RECEIVE_COUNT, REGION, AwsFleet, RequestCounter
from tests.faults import FaultInjector
from tests.waiting import wait_until


def test_a_delete_that_keeps_failing_is_given_up_after_three_flushes(aws_fleet: AwsFleet) -> None:
    """After three failed flushes the message is left to its visibility timeout, logged as a redelivery."""
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.background, MessageBody="done-but-undeletable")
    [message] = [InboundMessage.from_sqs(raw) for raw in aws_fleet.receive_all(aws_fleet.urls.background)]
    # One attempt per call, so each flush is one request and the count below is exact.
    sqs = boto3.client("sqs", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    requests = RequestCounter()
    requests.attach(sqs)
    FaultInjector(sqs).fail("DeleteMessageBatch", "unavailable")
    in_flight = InFlight(30)
    in_flight.add([message])
    settler = Settler(
        sqs=sqs,
        queue_url=aws_fleet.urls.background,
        dlq_url=aws_fleet.urls.background_dlq,
        in_flight=in_flight,
        backoff=Backoff(base_seconds=20, max_seconds=60),
        max_receive_count=MAX_RECEIVE_COUNT,
    )
    settler.start()

    with capture_logs() as logs:
        settler.settle(message, Outcome.done())
        wait_until(lambda: len(in_flight) == 0, timeout=10, what="the settler to give the message up")
        settler.close()

    assert 3 == requests.calls["DeleteMessageBatch"]
    assert [True] == [e.get("will_be_redelivered") for e in logs if e["event"] == "message.delete_failed"]
    assert (0, 1) == aws_fleet.depth(aws_fleet.urls.background)
