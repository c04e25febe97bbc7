"""Settling under injected faults: deletes outlast a brownout, refusals are not retried, hand-backs stay put."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from structlog.testing import capture_logs

from common.sqs.backoff import Backoff
from common.sqs.in_flight import InFlight, Lease, VisibilityHeartbeat
from common.sqs.inbound import InboundMessage
from common.sqs.settlement import Outcome, Settler
from tests.conftest import MAX_RECEIVE_COUNT, REGION, AwsFleet, RequestCounter
from tests.faults import FaultInjector
from tests.waiting import wait_until


def _one_attempt_client() -> tuple[Any, RequestCounter]:
    """One attempt per call, so each settle is one request and the counts below are exact."""
    sqs = boto3.client("sqs", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    requests = RequestCounter()
    requests.attach(sqs)
    return sqs, requests


def _finished(fleet: AwsFleet, in_flight: InFlight, outcome: Outcome) -> list[Lease]:
    fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody="job")
    [message] = [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.background)]
    leases = in_flight.open([message])
    for lease in leases:
        lease.finish(outcome)
    return in_flight.take_finished()


def _settler(fleet: AwsFleet, sqs: Any, in_flight: InFlight) -> Settler:
    return Settler(
        sqs=sqs,
        queue_url=fleet.urls.background,
        dlq_url=fleet.urls.background_dlq,
        in_flight=in_flight,
        backoff=Backoff(base_seconds=20, max_seconds=60),
        max_receive_count=MAX_RECEIVE_COUNT,
    )


def test_a_delete_is_retried_through_a_brownout_until_it_succeeds(aws_fleet: AwsFleet) -> None:
    """Five failed DeleteMessageBatch calls in a row do not give the delete up while the visibility lasts."""
    sqs, requests = _one_attempt_client()
    FaultInjector(sqs).fail("DeleteMessageBatch", "unavailable", times=5)
    in_flight = InFlight(30)
    settler = _settler(aws_fleet, sqs, in_flight)

    settler.settle(_finished(aws_fleet, in_flight, Outcome.done()))
    while settler.pending():
        settler.settle([])  # the loop's next turns

    assert 6 == requests.calls["DeleteMessageBatch"]
    assert (0, 0) == aws_fleet.depth(aws_fleet.urls.background)
    assert 0 == len(in_flight)


def test_a_delete_is_given_up_once_the_visibility_deadline_passed(aws_fleet: AwsFleet) -> None:
    """A delete still failing when the delivery becomes visible again is logged as a redelivery."""
    sqs, _requests = _one_attempt_client()
    FaultInjector(sqs).fail("DeleteMessageBatch", "unavailable")
    now = [0.0]
    in_flight = InFlight(30, clock=lambda: now[0])
    settler = _settler(aws_fleet, sqs, in_flight)
    leases = _finished(aws_fleet, in_flight, Outcome.done())
    settler.settle(leases)
    now[0] = leases[0].visible_again_at + 1

    with capture_logs() as logs:
        settler.settle([])

    assert 0 == settler.pending()
    assert [True] == [e.get("will_be_redelivered") for e in logs if e["event"] == "message.delete_failed"]


def test_a_delete_refused_as_a_sender_fault_is_not_retried(aws_fleet: AwsFleet) -> None:
    """A failed entry with SenderFault true cannot succeed by resending: one request, then given up."""
    sqs, requests = _one_attempt_client()

    def refuse(parsed: dict[str, Any], **_: Any) -> None:
        failed = [{"Id": entry["Id"], "Code": "AccessDenied", "SenderFault": True} for entry in parsed["Successful"]]
        parsed["Successful"], parsed["Failed"] = [], failed

    sqs.meta.events.register("after-call.sqs.DeleteMessageBatch", refuse)
    in_flight = InFlight(30)
    settler = _settler(aws_fleet, sqs, in_flight)

    settler.settle(_finished(aws_fleet, in_flight, Outcome.done()))

    assert 0 == settler.pending()
    assert 1 == requests.calls["DeleteMessageBatch"]
    assert 0 == len(in_flight)


def test_a_heartbeat_in_flight_cannot_undo_a_hand_back(aws_fleet: AwsFleet) -> None:
    """A release issued while an extension is on the wire lands after it: the message ends up visible."""
    in_flight = InFlight(30)
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.background, MessageBody="unstarted")
    [message] = [InboundMessage.from_sqs(raw) for raw in aws_fleet.receive_all(aws_fleet.urls.background)]
    leases = in_flight.open([message])
    settler = _settler(aws_fleet, aws_fleet.sqs, in_flight)
    heartbeat = VisibilityHeartbeat(sqs=aws_fleet.sqs, queue_url=aws_fleet.urls.background, in_flight=in_flight)
    released = threading.Thread(target=settler.release, args=(leases,))
    hand_backs: list[int] = []

    def on_the_wire(params: dict[str, Any], **_: Any) -> None:
        timeouts = [entry["VisibilityTimeout"] for entry in params["Entries"]]
        if timeouts == [0]:
            hand_backs.append(0)
            return
        released.start()  # the release is asked for while this extension has not reached SQS yet
        try:
            wait_until(lambda: hand_backs, timeout=2, what="an overtaking hand-back")
        except AssertionError:
            return  # the release waited for this call, as it must

    aws_fleet.sqs.meta.events.register("before-parameter-build.sqs.ChangeMessageVisibilityBatch", on_the_wire)
    heartbeat.extend_due(now=leases[0].visible_again_at)
    released.join(timeout=10)

    assert [0] == hand_backs
    assert (1, 0) == aws_fleet.depth(aws_fleet.urls.background)
