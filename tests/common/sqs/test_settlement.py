"""Settling messages: batched deletes, retries through visibility, quarantine with a reason."""

from __future__ import annotations

import random

from structlog.testing import capture_logs

from common.sqs.backoff import Backoff
from common.sqs.in_flight import InFlight
from common.sqs.inbound import InboundMessage
from common.sqs.quarantine import ATTR_ORIGINAL_MESSAGE_ID, ATTR_REASON, ATTR_SOURCE_QUEUE
from common.sqs.settlement import Outcome, Settler
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


def _settle(fleet: AwsFleet, messages: list[InboundMessage], outcome: Outcome) -> InFlight:
    """Open a lease per message, finish each with ``outcome`` and settle them in one go, as the loop does."""
    in_flight = InFlight(30)
    for lease in in_flight.open(messages):
        lease.finish(outcome)
    _settler(fleet, in_flight).settle(in_flight.take_finished())
    return in_flight


def test_ten_successes_cost_one_delete_batch(aws_fleet: AwsFleet) -> None:
    """Deletes are buffered and sent ten at a time, not one call per message."""
    messages = _received(aws_fleet, [f"m{i}" for i in range(10)])
    _settle(aws_fleet, messages, Outcome.done())

    assert 1 == aws_fleet.requests.calls["DeleteMessageBatch"]
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)


def test_failure_is_retried_through_visibility_not_resent(aws_fleet: AwsFleet) -> None:
    """A failed message stays on its queue, hidden for the backoff, and is never re-sent."""
    [message] = _received(aws_fleet, ["flaky"])
    sends_before = aws_fleet.requests.total("SendMessage", "SendMessageBatch")
    _settle(aws_fleet, [message], Outcome.retry("boom"))

    assert (0, 1) == aws_fleet.depth(aws_fleet.urls.background)
    assert 1 == aws_fleet.requests.calls["ChangeMessageVisibilityBatch"]
    assert sends_before == aws_fleet.requests.total("SendMessage", "SendMessageBatch")


def test_the_last_attempt_is_moved_to_the_dlq_by_the_worker_with_its_reason(aws_fleet: AwsFleet) -> None:
    """After the last allowed failure the worker sends the message to its DLQ with the reason, then deletes it."""
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.background, MessageBody="poison")
    for _ in range(MAX_RECEIVE_COUNT):
        [raw] = aws_fleet.receive_all(aws_fleet.urls.background, attempts=1)
        message = InboundMessage.from_sqs(raw)
        _settle(aws_fleet, [message], Outcome.retry("always fails"))
        if message.receive_count < MAX_RECEIVE_COUNT:
            # Earlier attempts wait out their backoff; make this one visible to keep the test fast.
            aws_fleet.sqs.change_message_visibility(
                QueueUrl=aws_fleet.urls.background, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
            )

    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)
    [parked] = aws_fleet.receive_all(aws_fleet.urls.background_dlq)
    assert ("poison", "attempts exhausted: always fails") == (
        parked["Body"],
        parked["MessageAttributes"][ATTR_REASON]["StringValue"],
    )


def _settled_with_attempts(
    fleet: AwsFleet, *, receive_count: int, attempts: int | None, outcome: Outcome, max_attempts: int = 5
) -> list[dict[str, object]]:
    """One delivery with ``receive_count`` and the ledger's ``attempts``, settled; returns the log lines."""
    [message] = _received(fleet, ["job"])
    delivery = InboundMessage(message.message_id, message.receipt_handle, "job", receive_count, 0, message.attributes)
    in_flight = InFlight(30)
    [lease] = in_flight.open([delivery])
    lease.attempts = attempts
    lease.finish(outcome)
    settler = Settler(
        sqs=fleet.sqs,
        queue_url=fleet.urls.background,
        dlq_url=fleet.urls.background_dlq,
        in_flight=in_flight,
        backoff=Backoff(base_seconds=20, max_seconds=60, rng=random.Random(3)),
        max_receive_count=20,
        max_attempts=max_attempts,
    )
    with capture_logs() as logs:
        settler.settle(in_flight.take_finished())
    return logs


def test_receives_that_started_no_run_do_not_count_towards_the_give_up(aws_fleet: AwsFleet) -> None:
    """Received 7 times but run twice (the ledger's attempts): retried with backoff, not dead-lettered."""
    logs = _settled_with_attempts(aws_fleet, receive_count=7, attempts=2, outcome=Outcome.retry("flaky"))

    assert ["message.retry_scheduled"] == [entry["event"] for entry in logs]
    assert [] == aws_fleet.receive_all(aws_fleet.urls.background_dlq, attempts=1)


def test_the_ledgers_attempts_decide_the_last_attempt(aws_fleet: AwsFleet) -> None:
    """Run MAX_ATTEMPTS times though received only twice: moved to the DLQ with the reason, off the source queue."""
    logs = _settled_with_attempts(aws_fleet, receive_count=2, attempts=5, outcome=Outcome.retry("flaky"))

    [handoff] = [entry for entry in logs if entry["event"] == "message.dead_letter_handoff"]
    assert (5, 5, "flaky") == (handoff["attempts"], handoff["max_attempts"], handoff["reason"])
    [parked] = aws_fleet.receive_all(aws_fleet.urls.background_dlq)
    assert "attempts exhausted: flaky" == parked["MessageAttributes"][ATTR_REASON]["StringValue"]
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)


def test_without_a_ledger_the_receive_count_stands_in_for_attempts(aws_fleet: AwsFleet) -> None:
    """attempts None (ledger off): the fifth receive of a failing message is its last attempt."""
    logs = _settled_with_attempts(aws_fleet, receive_count=5, attempts=None, outcome=Outcome.retry("flaky"))

    assert ["message.dead_letter_handoff"] == [
        entry["event"] for entry in logs if entry["event"].startswith("message.")
    ]


def test_a_retry_that_knows_when_to_come_back_is_hidden_that_long(aws_fleet: AwsFleet) -> None:
    """A busy copy's delay (the holder's lease end) replaces the backoff."""
    outcome = Outcome.retry("busy", delay_seconds=47)
    logs = _settled_with_attempts(aws_fleet, receive_count=1, attempts=0, outcome=outcome)

    [retry] = [entry for entry in logs if entry["event"] == "message.retry_scheduled"]
    assert 47 == retry["visible_in_seconds"]


def test_quarantine_moves_the_message_to_its_dlq_with_the_reason(aws_fleet: AwsFleet) -> None:
    """A malformed message is copied to the DLQ with its reason and source, then deleted from the source."""
    [message] = _received(aws_fleet, ["{not json"])
    _settle(aws_fleet, [message], Outcome.quarantine("body is not valid JSON"))

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
    with capture_logs() as logs:
        _settle(aws_fleet, [stale], Outcome.done())

    [warning] = [entry for entry in logs if entry["event"] == "message.delete_failed"]
    assert warning["possible_duplicate"] is True
    assert "warning" == warning["log_level"]


def test_released_messages_are_visible_again_at_once(aws_fleet: AwsFleet) -> None:
    """Unstarted messages handed back on shutdown can be received immediately by another worker."""
    messages = _received(aws_fleet, ["a", "b", "c"])
    in_flight = InFlight(30)
    leases = in_flight.open(messages)

    _settler(aws_fleet, in_flight).release(leases)

    assert (3, 0) == aws_fleet.depth(aws_fleet.urls.background)
    assert 0 == len(in_flight)


def test_the_last_attempt_logs_its_hand_off_to_the_dlq_with_the_job_ids(aws_fleet: AwsFleet) -> None:
    """The final failure says it went to the DLQ, with job_id and correlation_id."""
    attributes = {
        "jobId": {"DataType": "String", "StringValue": "01JD0000000000000000000000"},
        "correlationId": {"DataType": "String", "StringValue": "corr-1"},
    }
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.background, MessageBody="x", MessageAttributes=attributes)
    [raw] = aws_fleet.receive_all(aws_fleet.urls.background, attempts=1)
    message = InboundMessage.from_sqs(raw)
    last = InboundMessage(message.message_id, message.receipt_handle, "x", MAX_RECEIVE_COUNT, 0, message.attributes)

    with capture_logs() as logs:
        _settle(aws_fleet, [last], Outcome.retry("always fails"))

    [handoff] = [entry for entry in logs if entry["event"] == "message.dead_letter_handoff"]
    assert ("01JD0000000000000000000000", "corr-1") == (handoff["job_id"], handoff["correlation_id"])
    assert [] == [entry for entry in logs if entry["event"] == "message.retry_scheduled"]


def test_a_retry_is_logged_with_the_job_ids(aws_fleet: AwsFleet) -> None:
    """message.retry_scheduled carries the delivery's job_id and correlation_id."""
    attributes = {
        "jobId": {"DataType": "String", "StringValue": "01JD0000000000000000000001"},
        "correlationId": {"DataType": "String", "StringValue": "corr-2"},
    }
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.background, MessageBody="y", MessageAttributes=attributes)
    [message] = [InboundMessage.from_sqs(raw) for raw in aws_fleet.receive_all(aws_fleet.urls.background)]

    with capture_logs() as logs:
        _settle(aws_fleet, [message], Outcome.retry("flaky"))

    [retry] = [entry for entry in logs if entry["event"] == "message.retry_scheduled"]
    assert ("01JD0000000000000000000001", "corr-2") == (retry["job_id"], retry["correlation_id"])


def test_settling_one_delivery_keeps_the_other_delivery_of_the_same_message_heartbeated() -> None:
    """Leases are per receipt handle: two deliveries of one MessageId are tracked apart."""
    in_flight = InFlight(30)
    first, second = in_flight.open(
        [
            InboundMessage("same-id", "handle-1", "b", 1, 0, received_at=0.0),
            InboundMessage("same-id", "handle-2", "b", 2, 0, received_at=0.0),
        ]
    )

    in_flight.close([first])

    assert [second] == in_flight.due_for_extension(now=1000.0)
