"""Tests for the DLQ copy's attributes (common/sqs/quarantine.py)."""

from __future__ import annotations

from common.sqs.inbound import InboundMessage
from common.sqs.quarantine import ATTR_ORIGINAL_MESSAGE_ID, ATTR_REASON, quarantine_attributes


def _message(**attributes: str) -> InboundMessage:
    return InboundMessage("m-1", "rh", "{}", 2, 0, attributes)


def _values(attributes) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in attributes.items()}


def test_fleet_owned_attributes_are_never_taken_from_the_sender():
    """A sender's RedriveCount, RedrivenFrom and Quarantine* attributes do not reach the DLQ copy."""
    message = _message(
        RedriveCount="99",
        RedrivenFrom="forged",
        QuarantineReason="forged reason",
        OriginalMessageId="forged-id",
        QuarantineSourceQueue="elsewhere",
        orderId="o-1",
    )

    kept = _values(quarantine_attributes(message, reason="bad", source_queue="q"))

    assert "RedriveCount" not in kept
    assert "RedrivenFrom" not in kept
    assert ("bad", "m-1", "q") == (kept[ATTR_REASON], kept[ATTR_ORIGINAL_MESSAGE_ID], kept["QuarantineSourceQueue"])
    assert "o-1" == kept["orderId"]


def test_sender_attributes_fill_the_room_left_by_ours():
    """Ours take five of SQS's ten attributes; the sender's fill the rest, in the order sent."""
    message = _message(**{f"a{index}": "x" for index in range(8)})

    kept = quarantine_attributes(message, reason="bad", source_queue="q")

    assert 10 == len(kept)
    assert {"a0", "a1", "a2", "a3", "a4"} == {name for name in kept if name.startswith("a")}
