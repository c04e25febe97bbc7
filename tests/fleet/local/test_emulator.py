"""The embedded emulator: a thread-safe SQS, AWS-like FilterLogEvents, start-up errors in its own words."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from fleet.local.emulator import EmulatorError, start_emulator, stop_emulator
from tests.aws_cli import aws_cli


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One patched moto server for the module, on a free port."""
    port = _free_port()
    process = start_emulator(port, log_path=tmp_path_factory.mktemp("emulator") / "emulator.log")
    yield f"http://127.0.0.1:{port}"
    stop_emulator(process)


def _client(endpoint: str, service: str) -> Any:
    config = Config(max_pool_connections=32, retries={"mode": "standard"})
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", config=config)


def test_concurrent_deletes_and_receives_never_resurrect_or_double_deliver(endpoint: str) -> None:
    """Eight threads receive and batch-delete 400 messages: each is received once and none comes back."""
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="hammer", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for start in range(0, 400, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)])
    received: Counter[str] = Counter()

    def consume() -> None:
        empty = 0
        while empty < 3:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            empty = 0 if messages else empty + 1
            received.update(m["Body"] for m in messages)
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(consume) for _ in range(8)]:
            future.result()
    left = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]

    assert 400 == len(received)
    assert [] == [body for body, count in received.items() if count > 1]
    assert {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"} == left


def test_long_poll_does_not_block_other_callers(endpoint: str) -> None:
    """A 5 s receive on an empty queue leaves sends and receives on another queue answering."""
    sqs = _client(endpoint, "sqs")
    empty = sqs.create_queue(QueueName="idle")["QueueUrl"]
    busy = sqs.create_queue(QueueName="busy")["QueueUrl"]
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(sqs.receive_message, QueueUrl=empty, WaitTimeSeconds=5)
        sqs.send_message(QueueUrl=busy, MessageBody="x")
        got = sqs.receive_message(QueueUrl=busy, WaitTimeSeconds=1).get("Messages", [])
        done_before_poll = not poll.done()
        poll.result()

    assert ["x"] == [m["Body"] for m in got]
    assert done_before_poll


def test_aws_logs_tail_honours_stream_prefix_and_json_filter(endpoint: str) -> None:
    """`aws logs tail --log-stream-name-prefix` and `--filter-pattern '{ ... }'` return only matching events."""
    logs = _client(endpoint, "logs")
    logs.create_log_group(logGroupName="/ecs/t/background-job")
    now = int(time.time() * 1000)
    for stream in ("job-streams/2026-12-02/A", "job-streams/2026-12-02/B", "background-job/background-job/1"):
        logs.create_log_stream(logGroupName="/ecs/t/background-job", logStreamName=stream)
        events = [{"event": "job.started", "s": stream}, {"event": "job.succeeded", "s": stream}]
        logs.put_log_events(
            logGroupName="/ecs/t/background-job",
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": json.dumps(e)} for i, e in enumerate(events)],
        )

    def tail(*args: str) -> list[tuple[str, str]]:
        result = subprocess.run(
            [aws_cli(), "--endpoint-url", endpoint, "--region", "us-east-1", "logs", "tail", "/ecs/t/background-job",
             "--since", "1h", "--format", "short", *args],
            capture_output=True, text=True, check=True, timeout=60,
            env={"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_PAGER": "", "PATH": "/usr/bin"},
        )  # fmt: skip
        parsed = [json.loads(line.partition(" ")[2]) for line in result.stdout.splitlines() if line.strip()]
        return sorted((e["s"], e["event"]) for e in parsed)

    by_prefix = tail("--log-stream-name-prefix", "job-streams/2026-12-02/")
    by_json = tail("--filter-pattern", '{ $.event = "job.succeeded" }', "--log-stream-name-prefix", "job-streams/")

    assert [(s, e) for s in ("job-streams/2026-12-02/A", "job-streams/2026-12-02/B")
            for e in ("job.started", "job.succeeded")] == by_prefix  # fmt: skip
    assert [("job-streams/2026-12-02/A", "job.succeeded"), ("job-streams/2026-12-02/B", "job.succeeded")] == by_json


def test_a_failed_start_reports_the_emulators_own_error(tmp_path: Path) -> None:
    """On a port bound by another socket (not yet listening), the error quotes moto's own words."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        with pytest.raises(EmulatorError, match="Address already in use"):
            start_emulator(port, log_path=tmp_path / "emulator.log", timeout=30)


def test_one_client_reuses_one_connection_as_with_aws(endpoint: str) -> None:
    """Thirty calls from one client open one TCP connection: the emulator keeps it alive, as AWS does."""
    import psutil  # noqa: PLC0415 - a dev tool, imported where it is used

    port = int(endpoint.rsplit(":", 1)[1])
    sqs = _client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="keep-alive")["QueueUrl"]
    for number in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=str(number))

    def to_emulator() -> list[Any]:
        return [c for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port]

    assert len(to_emulator()) == 1
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "30"
    }


def test_the_emulators_clock_is_the_system_clock_and_dated_conversions_are_moto_s() -> None:
    """The fast clock moto's SQS reads per queued message agrees with time.time(); given a date it is moto's own."""
    import datetime  # noqa: PLC0415

    import moto.core.utils as moto_utils  # noqa: PLC0415
    import moto.sqs.models as sqs_models  # noqa: PLC0415

    from fleet.local.emulator import _patch_clock  # noqa: PLC0415 - the one patch under test

    _patch_clock()
    before = time.time() * 1000
    now = sqs_models.unix_time_millis()
    assert before <= now <= time.time() * 1000
    assert moto_utils.unix_time(datetime.datetime(1970, 1, 2)) == 86400.0


def test_a_cancelled_transaction_restores_what_it_touched_and_keeps_every_other_write(endpoint: str) -> None:
    """The emulator rolls back a cancelled TransactWriteItems item by item (not by restoring a table copy)."""
    dynamodb = _client(endpoint, "dynamodb")
    dynamodb.create_table(
        TableName="rollback",
        KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "jobId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="rollback", Item={"jobId": {"S": "kept"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="rollback", Item={"jobId": {"S": "updated"}, "n": {"N": "1"}})
    put_new = {"Put": {"TableName": "rollback", "Item": {"jobId": {"S": "new"}}}}
    bump = {
        "Update": {
            "TableName": "rollback",
            "Key": {"jobId": {"S": "updated"}},
            "UpdateExpression": "SET n = :two",
            "ExpressionAttributeValues": {":two": {"N": "2"}},
        }
    }
    refused = {
        "ConditionCheck": {
            "TableName": "rollback",
            "Key": {"jobId": {"S": "kept"}},
            "ConditionExpression": "attribute_not_exists(jobId)",
        }
    }
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[put_new, bump, refused])
    dynamodb.put_item(TableName="rollback", Item={"jobId": {"S": "after"}})

    items = {i["jobId"]["S"]: i.get("n", {}).get("N") for i in dynamodb.scan(TableName="rollback")["Items"]}
    assert items == {"kept": "1", "updated": "1", "after": None}
