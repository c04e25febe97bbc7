"""SendMessageBatch within SQS's limits: packed by size, and one refused entry never fails its neighbours."""

from __future__ import annotations

import boto3
from botocore.config import Config

from common.sqs.send_batch import MAX_PAYLOAD_BYTES, entry_size, pack, send_message_batch
from tests.conftest import REGION, AwsFleet, RequestCounter
from tests.faults import FaultInjector

ONE_MIB = 1_048_576


def _entry(index: int, size: int) -> dict[str, object]:
    return {"Id": str(index), "MessageBody": "x" * size}


def test_entries_are_packed_by_count_and_by_payload_size() -> None:
    """Ten small entries share a call; large ones split calls at the budget; an oversized one goes alone."""
    small = [_entry(i, 10) for i in range(12)]
    large = [_entry(i, MAX_PAYLOAD_BYTES // 2 - 10) for i in range(4)]
    huge = [_entry(0, 10), _entry(1, MAX_PAYLOAD_BYTES + 1), _entry(2, 10)]

    assert [10, 2] == [len(chunk) for chunk in pack(small)]  # type: ignore[arg-type]
    assert [2, 2] == [len(chunk) for chunk in pack(large)]  # type: ignore[arg-type]
    assert [1, 1, 1] == [len(chunk) for chunk in pack(huge)]  # type: ignore[arg-type]


def test_size_counts_attribute_names_types_and_values() -> None:
    """SQS counts message attributes against the limit, so the packing does too."""
    entry = {"Id": "0", "MessageBody": "é", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "vv"}}}

    assert 2 + 1 + 6 + 2 == entry_size(entry)  # type: ignore[arg-type]


def test_an_oversized_entry_fails_alone_as_a_sender_fault(aws_fleet: AwsFleet) -> None:
    """The emulator refuses the whole call for one entry over 1 MiB; its neighbours are still sent."""
    entries = [_entry(0, 100), _entry(1, ONE_MIB + 10), _entry(2, 100)]

    failures = send_message_batch(aws_fleet.sqs, aws_fleet.urls.background, entries)  # type: ignore[arg-type]

    assert ["1"] == list(failures)
    assert failures["1"]["SenderFault"] is True
    assert (2, 0) == aws_fleet.depth(aws_fleet.urls.background)


def test_a_transient_error_fails_every_entry_for_a_retry(aws_fleet: AwsFleet) -> None:
    """A 503 is nobody's message's fault: every entry fails, none as a sender fault, and nothing is split."""
    sqs = boto3.client("sqs", region_name=REGION, config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    requests = RequestCounter()
    requests.attach(sqs)
    FaultInjector(sqs).fail("SendMessageBatch", "unavailable")

    failures = send_message_batch(sqs, aws_fleet.urls.background, [_entry(0, 10), _entry(1, 10)])  # type: ignore[list-item]

    assert {"0": False, "1": False} == {key: failure["SenderFault"] for key, failure in failures.items()}
    assert 1 == requests.calls["SendMessageBatch"]
