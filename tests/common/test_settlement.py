"""Settling messages: batched deletes, retries through visibility, quarantine with a reason."""

from __future__ import annotations

import random

from structlog.testing import capture_logs

from common.backoff import Backoff
from common.in_flight import InFlight
from common.inbound import InboundMessage
from common.quarantine import ATTR_ORIGINAL_MESSAGE_ID, ATTR_REASON, ATTR_SOURCE_QUEUE
from common.settlement import Outcome, Settler
from tests.conftest import MAX_RECEIVE_COUNT, AwsFleet


def _received(fleet: AwsFleet, bodies: list[str]) -> list[InboundMessage]:
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody=body)
    return [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.background)]


def _settler(fleet: AwsFleet, in_flight: InFlight | None = None) -> Settler:
    return Settler(
        sqs=fleet.sqs,
        queue_url=fleet.urls.background,
        dlq_url=fleet.urls.background_dlq,
        in_flight=in_flight or InFlight(30),
        backoff=Backoff(base_seconds=20, max_seconds=60, rng=random.Random(3)),
        max_receive_count=MAX_RECEIVE_COUNT,
    )


def test_ten_successes_cost_one_delete_batch(aws_fleet: AwsFleet) -> None:
    """Deletes are buffered and sent ten at a time, not one call per message."""
    messages = _received(aws_fleet, [f"m{i}" for i in range(10)])
    settler = _settler(aws_fleet)
    settler.start()

    for message in messages:
        settler.settle(message, Outcome.done())
    settler.close()

    assert 1 == aws_fleet.requests.calls["DeleteMessageBatch"]
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)


def test_failure_is_retried_through_visibility_not_resent(aws_fleet: AwsFleet) -> None:
    """A failed message stays on its queue, hidden for the backoff, and is never re-sent."""
    [message] = _received(aws_fleet, ["flaky"])
    sends_before = aws_fleet.requests.total("SendMessage", "SendMessageBatch")
    settler = _settler(aws_fleet)
    settler.start()

    settler.settle(message, Outcome.retry("boom"))
    settler.close()

    assert (0, 1) == aws_fleet.depth(aws_fleet.urls.background)
    assert 1 == aws_fleet.requests.calls["ChangeMessageVisibilityBatch"]
    assert sends_before == aws_fleet.requests.total("SendMessage", "SendMessageBatch")


def test_last_attempt_is_handed_back_at_once_for_the_redrive_policy(aws_fleet: AwsFleet) -> None:
    """After maxReceiveCount failures the message goes to its DLQ by the queue's own redrive."""
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.background, MessageBody="poison")
    settler = _settler(aws_fleet)
    settler.start()
    for _ in range(MAX_RECEIVE_COUNT):
        [raw] = aws_fleet.receive_all(aws_fleet.urls.background, attempts=1)
        message = InboundMessage.from_sqs(raw)
        settler.settle(message, Outcome.retry("always fails"))
        settler.close()
        settler = _settler(aws_fleet)
        settler.start()
        if message.receive_count < MAX_RECEIVE_COUNT:
            # Earlier attempts wait out their backoff; make this one visible to keep the test fast.
            aws_fleet.sqs.change_message_visibility(
                QueueUrl=aws_fleet.urls.background, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
            )
    settler.close()

    assert [] == aws_fleet.receive_all(aws_fleet.urls.background, attempts=1)
    assert ["poison"] == [m["Body"] for m in aws_fleet.receive_all(aws_fleet.urls.background_dlq)]


def test_quarantine_moves_the_message_to_its_dlq_with_the_reason(aws_fleet: AwsFleet) -> None:
    """A malformed message is copied to the DLQ with its reason and source, then deleted from the source."""
    [message] = _received(aws_fleet, ["{not json"])
    settler = _settler(aws_fleet)
    settler.start()

    settler.settle(message, Outcome.quarantine("body is not valid JSON"))
    settler.close()

    [parked] = aws_fleet.receive_all(aws_fleet.urls.background_dlq)
    attributes = {name: value["StringValue"] for name, value in parked["MessageAttributes"].items()}
    assert "{not json" == parked["Body"]
    assert "body is not valid JSON" == attributes[ATTR_REASON]
    assert aws_fleet.urls.background == attributes[ATTR_SOURCE_QUEUE]
    assert message.message_id == attributes[ATTR_ORIGINAL_MESSAGE_ID]
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)


def test_expired_receipt_handle_is_logged_as_possible_duplicate(aws_fleet: AwsFleet) -> None:
    """Deleting with a stale receipt handle warns about a possible duplicate and does not crash."""
    [message] = _received(aws_fleet, ["late"])
    stale = InboundMessage(message.message_id, "not-a-valid-receipt-handle", "late", 1, 0)
    settler = _settler(aws_fleet)
    settler.start()

    with capture_logs() as logs:
        settler.settle(stale, Outcome.done())
        settler.close()

    [warning] = [entry for entry in logs if entry["event"] == "message.delete_failed"]
    assert warning["possible_duplicate"] is True
    assert "warning" == warning["log_level"]


def test_released_messages_are_visible_again_at_once(aws_fleet: AwsFleet) -> None:
    """Unstarted messages handed back on shutdown can be received immediately by another worker."""
    messages = _received(aws_fleet, ["a", "b", "c"])
    in_flight = InFlight(30)
    in_flight.add(messages)

    _settler(aws_fleet, in_flight).release(messages)

    assert (3, 0) == aws_fleet.depth(aws_fleet.urls.background)
    assert 0 == len(in_flight)
