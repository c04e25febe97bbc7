"""The local AWS proxy: counts calls by operation and injects faults that reach boto3 like real ones."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from fleet.local.aws_proxy import AwsProxy, resources_of
from tests.waiting import wait_until


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _listening(port), timeout=30, what="moto server")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def proxy(moto_port: int) -> Iterator[AwsProxy]:
    running = AwsProxy(upstream_port=moto_port).start()
    yield running
    running.stop()


def _sqs(endpoint: str, attempts: int = 1) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts})
    return boto3.client("sqs", endpoint_url=endpoint, config=config)


def test_calls_are_counted_by_operation(proxy: AwsProxy) -> None:
    """Every request through the proxy is counted under its AWS operation name."""
    sqs = _sqs(proxy.endpoint)
    url = sqs.create_queue(QueueName="proxy-counts")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)

    with urllib.request.urlopen(proxy.endpoint + "/__proxy__/stats") as response:  # noqa: S310 - loopback
        stats = json.load(response)

    assert {"CreateQueue": 1, "SendMessage": 1, "ReceiveMessage": 1} == stats["calls"]


def test_calls_are_counted_by_the_queue_table_or_log_group_they_name(proxy: AwsProxy) -> None:
    """What each call touched, so a test can hold an IAM statement's resources to the calls (tests/tf)."""
    sqs = _sqs(proxy.endpoint)
    url = sqs.create_queue(QueueName="proxy-targets")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.send_message(QueueUrl=url, MessageBody="y")

    assert 2 == proxy.state.snapshot()["targets"]["SendMessage proxy-targets"]


def test_a_transaction_names_every_table_it_writes() -> None:
    """TransactWriteItems is authorised per item: each item's table is a target."""
    body = {
        "TransactItems": [
            {"Update": {"TableName": "jobs", "Key": {}}},
            {"ConditionCheck": {"TableName": "other", "Key": {}}},
        ]
    }

    assert ["jobs", "other"] == resources_of(json.dumps(body).encode())


def test_injected_throttle_reaches_boto3_as_throttling(proxy: AwsProxy) -> None:
    """A throttle is an HTTP 400 ThrottlingException, parsed by botocore like the real one."""
    sqs = _sqs(proxy.endpoint)
    url = sqs.create_queue(QueueName="proxy-throttle")["QueueUrl"]
    proxy.state.set_rules([{"operation": "SendMessage", "kind": "throttle"}])

    with pytest.raises(ClientError) as caught:
        sqs.send_message(QueueUrl=url, MessageBody="x")

    assert "ThrottlingException" == caught.value.response["Error"]["Code"]
    assert (0, "0") == (proxy.state.calls["SendMessage"] - 1, _sqs_depth(sqs, url))


def test_reset_after_apply_changes_state_but_the_client_sees_an_error(proxy: AwsProxy) -> None:
    """The message is stored even though the sender saw its connection drop."""
    sqs = _sqs(proxy.endpoint)
    url = sqs.create_queue(QueueName="proxy-reset")["QueueUrl"]
    proxy.state.set_rules([{"operation": "SendMessage", "kind": "reset_after"}])

    with pytest.raises(ConnectionClosedError):
        sqs.send_message(QueueUrl=url, MessageBody="x")

    assert "1" == _sqs_depth(sqs, url)


def test_delay_holds_the_request_then_forwards_it(proxy: AwsProxy) -> None:
    """A slow, not failing, service: nothing is applied while the request is held, then it succeeds."""
    sqs = _sqs(proxy.endpoint)
    url = sqs.create_queue(QueueName="proxy-delay")["QueueUrl"]
    proxy.state.set_rules([{"operation": "SendMessage", "kind": "delay", "seconds": 3}])
    answers: list[str] = []

    def send() -> None:
        answers.append(sqs.send_message(QueueUrl=url, MessageBody="x")["MessageId"])

    sender = threading.Thread(target=send)

    sender.start()
    wait_until(lambda: proxy.state.faults.get("SendMessage:delay"), timeout=10, what="the held request")
    held_depth = _sqs_depth(sqs, url)
    sender.join(timeout=30)

    assert "0" == held_depth
    assert (1, "1") == (len(answers), _sqs_depth(sqs, url))


def test_botocore_retries_ride_through_a_partial_fault_rate(proxy: AwsProxy) -> None:
    """With standard retries, calls succeed despite one in three failing."""
    sqs = _sqs(proxy.endpoint, attempts=6)
    url = sqs.create_queue(QueueName="proxy-rate")["QueueUrl"]
    proxy.state.set_rules([{"operation": "GetQueueAttributes", "kind": "unavailable", "rate": 0.33}])

    for _ in range(20):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])

    assert proxy.state.faults["GetQueueAttributes:unavailable"] > 0


def _sqs_depth(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return str(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_rule_can_match_one_kind_of_request_and_stop_after_n_faults(proxy: AwsProxy) -> None:
    """``matching`` picks requests by their body, ``times`` bounds the faults: the counter's write, once."""
    sqs = _sqs(proxy.endpoint)
    url = sqs.create_queue(QueueName="proxy-matching")["QueueUrl"]
    proxy.state.set_rules([{"operation": "SendMessage", "kind": "conflict", "matching": "poison", "times": 1}])

    sqs.send_message(QueueUrl=url, MessageBody="harmless")
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="poison")
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    assert "TransactionConflictException" == refused.value.response["Error"]["Code"]
    assert {"SendMessage:conflict": 1} == proxy.state.snapshot()["faults"]
