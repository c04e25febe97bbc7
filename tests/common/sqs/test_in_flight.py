"""The visibility heartbeat: every due delivery is extended on time, whatever the ledger's hook does."""

from __future__ import annotations

import threading

from common.sqs.in_flight import InFlight, Lease, VisibilityHeartbeat
from common.sqs.inbound import InboundMessage
from tests.common.sqs.held_hook import HeldHook
from tests.conftest import AwsFleet
from tests.waiting import wait_until

#: Long enough that the heartbeat's own thread (a turn every sixth of it) never runs during a test.
VISIBILITY = 600


def _received(fleet: AwsFleet, *bodies: str) -> list[Lease]:
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls.background, MessageBody=body)
    messages = [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.background)]
    return InFlight(VISIBILITY).open(messages)


def test_a_hanging_ledger_hook_never_delays_the_next_visibility_extension(aws_fleet: AwsFleet) -> None:
    """Two heartbeat turns while the first ledger write hangs: both extend SQS visibility at once."""
    (lease,) = _received(aws_fleet, "long job")
    hook = HeldHook()
    heartbeat = VisibilityHeartbeat(
        sqs=aws_fleet.sqs, queue_url=aws_fleet.urls.background, in_flight=lease.registry, on_extended=hook
    )
    heartbeat.start()
    turns = threading.Thread(
        target=lambda: [heartbeat.extend_due(now=lease.visible_again_at) for _ in range(2)], daemon=True
    )
    try:
        turns.start()
        turns.join(timeout=10)

        assert not turns.is_alive(), "a heartbeat turn waited on the ledger hook"
        assert 2 == aws_fleet.requests.total("ChangeMessageVisibilityBatch")
        assert 2 == heartbeat.extensions
    finally:
        hook.answer.set()
        heartbeat.stop()


def test_extensions_made_while_the_ledger_hook_hangs_reach_it_in_its_next_call(aws_fleet: AwsFleet) -> None:
    """Nothing queues without bound: what piled up behind a slow call goes in one call, each delivery once."""
    first, second = _received(aws_fleet, "a", "b")
    hook = HeldHook()
    heartbeat = VisibilityHeartbeat(
        sqs=aws_fleet.sqs, queue_url=aws_fleet.urls.background, in_flight=first.registry, on_extended=hook
    )
    heartbeat.start()
    try:
        heartbeat.extend_due(now=max(first.visible_again_at, second.visible_again_at))
        wait_until(lambda: len(hook.calls) == 1, timeout=10, what="the first hook call")
        for _ in range(3):
            heartbeat.extend_due(now=max(first.visible_again_at, second.visible_again_at))
        hook.answer.set()
        wait_until(lambda: len(hook.calls) == 2, timeout=10, what="the second hook call")

        assert [["a", "b"], ["a", "b"]] == hook.calls
    finally:
        hook.answer.set()
        heartbeat.stop()
