"""The emulator refuses the sends AWS refuses (SQS API reference): invalid characters, size in bytes with attributes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from fleet.local.emulator import start_emulator, stop_emulator
from fleet.local.sqs_validation import invalid_character, message_size, refusal

LONE_SURROGATE = "\ud800"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sqs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An SQS client of one patched moto server for the module."""
    port = _free_port()
    process = start_emulator(port, log_path=tmp_path_factory.mktemp("emulator") / "emulator.log")
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    yield boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the emulator's dummy credentials
        config=config,
    )
    stop_emulator(process)


def _queue(sqs: Any, name: str, max_size: int = 262_144) -> str:
    return str(sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": str(max_size)})["QueueUrl"])


def _bodies(sqs: Any, url: str) -> list[str]:
    """Every message of the queue, received (a receive that failed would raise here)."""
    found: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages"):
        found += [message["Body"] for message in messages]
    return sorted(found)


def _text(value: str) -> dict[str, dict[str, str]]:
    return {"note": {"DataType": "String", "StringValue": value}}


def test_allowed_characters_are_the_api_references_set() -> None:
    """Tab, LF, CR, the BMP outside surrogates and U+FFFE/F, and the astral planes are allowed; nothing else."""
    allowed = "\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff"
    refused = ("\x00", "a\x08", "\x1f", LONE_SURROGATE, "\udfff", "\ufffe", "\uffff")
    assert [None, "#x0", "#x8", "#x1F", "#xD800", "#xDFFF", "#xFFFE", "#xFFFF"] == [
        invalid_character(text) for text in (allowed, *refused)
    ]


def test_size_counts_body_and_attributes_in_utf8_bytes() -> None:
    """Two-byte characters count twice; each attribute adds its name, type and value."""
    assert 2 * 100 + len("note") + len("String") + len("abc") == message_size("é" * 100, _text("abc"))


def test_a_message_over_the_limit_only_by_its_bytes_or_attributes_is_refused() -> None:
    """moto counted characters of the body alone; AWS counts bytes of body and attributes."""
    assert refusal("x" * 1024, {}, 1024) is None
    assert "InvalidParameterValue" == refusal("é" * 600, {}, 1024)[0]  # type: ignore[index]
    assert "InvalidParameterValue" == refusal("x" * 1000, _text("y" * 100), 1024)[0]  # type: ignore[index]


def test_send_with_an_unpaired_surrogate_in_an_attribute_is_a_400_and_stores_nothing(sqs: Any) -> None:
    """SendMessage answers InvalidParameterValue (HTTP 400) and the queue stays receivable and empty."""
    url = _queue(sqs, "poison-single")

    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=_text(f"bad {LONE_SURROGATE}"))

    assert ("InvalidParameterValue", 400) == (
        refused.value.response["Error"]["Code"],
        refused.value.response["ResponseMetadata"]["HTTPStatusCode"],
    )
    assert "#xD800" in refused.value.response["Error"]["Message"]
    assert [] == _bodies(sqs, url)


def test_a_body_with_a_control_character_is_invalid_message_contents(sqs: Any) -> None:
    """SendMessage answers a body outside the allowed set with InvalidMessageContents (HTTP 400)."""
    url = _queue(sqs, "poison-body")

    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="nul \x00 here")

    assert "InvalidMessageContents" == refused.value.response["Error"]["Code"]
    assert [] == _bodies(sqs, url)


def test_a_poison_batch_entry_fails_alone_and_its_neighbours_are_stored(sqs: Any) -> None:
    """SendMessageBatch reports the bad entry as Failed (sender fault); the nine others are stored and received."""
    url = _queue(sqs, "poison-batch")
    entries = [{"Id": str(i), "MessageBody": f"ok {i}", "MessageAttributes": _text("fine")} for i in range(10)]
    entries[4]["MessageAttributes"] = _text(LONE_SURROGATE)

    response = sqs.send_message_batch(QueueUrl=url, Entries=entries)

    assert [("4", "InvalidParameterValue", True)] == [
        (failed["Id"], failed["Code"], failed["SenderFault"]) for failed in response["Failed"]
    ]
    assert sorted(str(i) for i in range(10) if i != 4) == sorted(ok["Id"] for ok in response["Successful"])
    assert sorted(f"ok {i}" for i in range(10) if i != 4) == _bodies(sqs, url)


def test_a_batch_of_only_poison_entries_fails_each_and_stores_nothing(sqs: Any) -> None:
    """Every entry refused: HTTP 200 with every entry in Failed, nothing stored."""
    url = _queue(sqs, "poison-only")

    response = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x", "MessageAttributes": _text("\ufffe")}]
    )

    assert (["a"], []) == ([failed["Id"] for failed in response["Failed"]], response.get("Successful", []))
    assert [] == _bodies(sqs, url)


def test_the_size_limit_counts_attributes_on_the_wire(sqs: Any) -> None:
    """A body at the limit goes; the same body with an attribute is refused as AWS refuses it."""
    url = _queue(sqs, "size-limit", max_size=1024)
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)

    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1024, MessageAttributes=_text("y"))

    assert "InvalidParameterValue" == refused.value.response["Error"]["Code"]
    assert ["x" * 1024] == _bodies(sqs, url)
