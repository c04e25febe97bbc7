"""Tests for `fleet top` (fleet/cli/top.py, fleet/cli/top_view.py): a snapshot off a terminal, and its cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from common.ledger.days import queued_day
from common.ledger.schema import ATTR_QUEUED_DAY, JobStatus
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from fleet.cli.clients import Clients
from fleet.cli.deployment import Deployment
from fleet.cli.ledger import Ledger
from fleet.cli.top import NEWEST_LIMIT, WINDOW_MINUTES, RequestCount, TopSource
from fleet.local.provision import provision_job_ledger

from .conftest import PROJECT, REGION, new_job_id


@pytest.fixture
def ledger_put(fleet):
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    provision_job_ledger(dynamodb, fleet.names.job_ledger_table)

    def put(index: int, status: JobStatus, updated: datetime, **extra: dict[str, str]) -> str:
        job_id = new_job_id(index, updated - timedelta(seconds=5))
        stamp = updated.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        item = {
            "jobId": {"S": job_id},
            "status": {"S": status.value},
            "updatedAt": {"S": stamp},
            "jobType": {"S": "diagnostic-sleep"},
            "attempts": {"N": "1"},
            ATTR_QUEUED_DAY: {"S": queued_day(job_id, updated.timestamp())},
            **extra,
        }
        dynamodb.put_item(TableName=fleet.names.job_ledger_table, Item=item)
        return job_id

    return put


def test_top_prints_one_snapshot_of_queues_jobs_and_counts_off_a_terminal(fleet, ledger_put):
    """Not a terminal: one snapshot with each queue's depth, the DLQ highlighted, per-minute outcomes, newest jobs."""
    now = datetime.now(UTC)
    # Every stamp in one minute: they reach 3 s back, so near a minute's start they go to the minute before.
    at = now if now.second >= 4 else now.replace(second=0, microsecond=0) - timedelta(seconds=1)
    for _ in range(3):
        fleet.sqs.send_message(QueueUrl=fleet.urls["background"], MessageBody="{}")
    fleet.sqs.send_message(QueueUrl=fleet.urls["background-dlq"], MessageBody="{}")
    for index in range(4):
        ledger_put(index, JobStatus.SUCCEEDED, at - timedelta(seconds=index), durationMs={"N": "1500"})
    ledger_put(10, JobStatus.DEAD, at - timedelta(seconds=1))
    running = ledger_put(11, JobStatus.RUNNING, at, progress={"N": "0.4"}, progressNote={"S": "4 of 10 files"})

    result = fleet.run("top")

    lines = result.out.splitlines()
    background = next(line for line in lines if f"{fleet.names.background_queue} " in line)
    dlq = next(line for line in lines if fleet.names.background_dlq in line)
    minute = next(line for line in lines if line.lstrip("│ ").startswith(at.strftime("%H:%M")))
    assert 0 == result.code
    assert ["3", "0", "0"] == background.replace("│", " ").split()[1:4]
    assert "<< DLQ holds messages" in dlq
    assert ["4", "0", "1", "0"] == minute.replace("│", " ").split()[1:5]
    assert any(running in line and "40% 4 of 10 files" in line for line in lines)
    assert 6 == sum(1 for line in lines if "diagnostic-sleep" in line)


def _ecs_services(fleet, desired: int) -> None:
    """The cluster and both services as tf/ecs.tf names them, in moto's ECS."""
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = Deployment.from_env(project=PROJECT, environment=None).cluster
    ecs.create_cluster(clusterName=cluster)
    container = {"name": "worker", "image": "worker", "memory": 512}
    ecs.register_task_definition(family="worker", containerDefinitions=[container])
    for service in (MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE):
        ecs.create_service(cluster=cluster, serviceName=service, taskDefinition="worker", desiredCount=desired)


def test_top_shows_running_and_desired_tasks_per_service(fleet, ledger_put):
    """With an ECS cluster (on AWS), each service's running and desired task counts are shown."""
    _ecs_services(fleet, desired=3)
    result = fleet.run("top")
    rows = [line.replace("│", " ").split() for line in result.out.splitlines()]
    services = {row[0]: row[2] for row in rows if row[:1] in ([MAIN_JOB_SERVICE], [BACKGROUND_JOB_SERVICE])}
    assert {MAIN_JOB_SERVICE: "3", BACKGROUND_JOB_SERVICE: "3"} == services


def _top_source(fleet) -> tuple[TopSource, RequestCount]:
    clients = Clients.from_environment()
    deployment = Deployment.from_env(project=PROJECT, environment=None)
    source = TopSource(clients, deployment, Ledger(clients.dynamodb, fleet.names.job_ledger_table))
    return source, RequestCount(clients)


def test_a_steady_refresh_makes_seven_requests_whatever_the_number_of_jobs(fleet, ledger_put):
    """After the first refresh: 4 SQS + 1 by-day Query + 1 BatchGetItem (a job still running) + 1 ECS = 7."""
    _ecs_services(fleet, desired=1)
    now = datetime.now(UTC)
    ledger_put(1, JobStatus.RUNNING, now)
    for index in range(2, 150):
        ledger_put(index, JobStatus.SUCCEEDED, now - timedelta(milliseconds=index))
    source, counter = _top_source(fleet)
    source.refresh(datetime.now(UTC))
    counts = []
    for _ in range(4):
        before = counter.total
        source.refresh(datetime.now(UTC))
        counts.append(counter.total - before)
    assert [7, 7, 7, 7] == counts


def test_a_refresh_reads_again_only_the_jobs_not_yet_settled(fleet, ledger_put):
    """A running job is read at every refresh and shows its new state; a succeeded one is not read again."""
    now = datetime.now(UTC)
    running = ledger_put(1, JobStatus.RUNNING, now)
    ledger_put(2, JobStatus.SUCCEEDED, now)
    source, _ = _top_source(fleet)
    table = fleet.names.job_ledger_table
    read: list[list[str]] = []
    source.clients.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem",
        lambda params, **_: read.append(sorted(key["jobId"]["S"] for key in params["RequestItems"][table]["Keys"])),
    )
    source.refresh(now)
    source.clients.dynamodb.update_item(
        TableName=table,
        Key={"jobId": {"S": running}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": JobStatus.SUCCEEDED.value}},
    )
    view = source.refresh(now + timedelta(seconds=6))

    assert 2 == len(read[0])
    assert [running] == read[1]
    assert {JobStatus.SUCCEEDED.value} == {job.status for job in view.newest}


def test_a_busy_window_shows_the_newest_hundred_jobs_and_says_it_is_a_sample(fleet, ledger_put):
    """More than 100 jobs queued in five minutes: one Query page, one BatchGetItem, and a note saying so."""
    now = datetime.now(UTC)
    for index in range(120):
        ledger_put(index, JobStatus.SUCCEEDED, now - timedelta(seconds=index))
    source, _ = _top_source(fleet)
    view = source.refresh(now)

    assert f"jobs: the newest {NEWEST_LIMIT} queued in the last {WINDOW_MINUTES} minutes" in view.notes
    assert NEWEST_LIMIT == sum(sum(counts.values()) for _, counts in view.per_minute)
