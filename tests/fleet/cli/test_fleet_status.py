"""Tests for `fleet status` (fleet/cli/fleet_status.py) on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3

from fleet.cli import fleet_status
from fleet.cli.clients import Clients
from fleet.cli.deployment import Deployment
from fleet.cli.fleet_status import HIGHLIGHT

from .conftest import ENVIRONMENT, REGION


def _rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}


def test_status_shows_all_four_queues_and_highlights_a_dlq_with_messages(fleet):
    """Each queue gets a row of depths; only the DLQ that holds messages is marked."""
    for body in ("a", "b"):
        fleet.sqs.send_message(QueueUrl=fleet.urls["triggers"], MessageBody=body)
    fleet.sqs.send_message(QueueUrl=fleet.urls["background-dlq"], MessageBody="poison")

    result = fleet.run("status")

    rows = _rows(result.out)
    assert 0 == result.code
    assert ["2", "0", "0", "n/a"] == rows[fleet.names.trigger_queue]
    assert ["0", "0", "0", "n/a"] == rows[fleet.names.trigger_dlq]
    assert ["1", "0", "0", "n/a", *HIGHLIGHT.split()] == rows[fleet.names.background_dlq]
    assert ["0", "0", "0", "n/a"] == rows[fleet.names.background_queue]


def test_status_notes_that_ecs_is_absent_instead_of_failing(fleet):
    """Without an ECS cluster (as locally) the queues are still shown, with a note about ECS."""
    result = fleet.run("status")

    assert 0 == result.code
    assert "ECS: " in result.out
    assert fleet.names.prefix in result.out.splitlines()[-1]


def test_status_against_an_emulator_asks_no_ecs_and_prints_no_ecs_note(fleet):
    """Locally (AWS_ENDPOINT_URL set) the workers are the local fleet's processes: no ECS call, no note."""
    ecs_calls: list[str] = []
    clients = Clients.from_environment()
    clients.ecs.meta.events.register("before-call.ecs", lambda event_name, **_: ecs_calls.append(event_name))

    deployment = Deployment("message-driven-microservices", ENVIRONMENT)
    report = fleet_status.collect(clients, deployment, now=datetime.now(UTC), emulator=True)

    assert ([], "", []) == (report.services, report.ecs_note, ecs_calls)
    assert fleet.names.trigger_queue in [queue.name for queue in report.queues]


def test_status_shows_running_and_desired_tasks_when_ecs_answers(fleet):
    """With the cluster and both services present, their task counts are listed."""
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName=fleet.names.prefix)
    ecs.register_task_definition(family="w", containerDefinitions=[{"name": "w", "image": "w:1", "memory": 512}])
    for service, desired in (("main-job", 2), ("background-job", 3)):
        ecs.create_service(cluster=fleet.names.prefix, serviceName=service, taskDefinition="w", desiredCount=desired)

    result = fleet.run("status")

    rows = _rows(result.out)
    assert "2" == rows["main-job"][1]
    assert "3" == rows["background-job"][1]
    assert "ECS:" not in result.out


def test_status_json_is_machine_readable(fleet):
    """--json gives every queue with its depths and whether it needs attention."""
    fleet.sqs.send_message(QueueUrl=fleet.urls["triggers-dlq"], MessageBody="poison")

    result = fleet.run("status", "--json")

    document = json.loads(result.out)
    by_name = {queue["name"]: queue for queue in document["queues"]}
    assert 4 == len(by_name)
    assert by_name[fleet.names.trigger_dlq]["needs_attention"] is True
    assert by_name[fleet.names.trigger_queue]["needs_attention"] is False
    assert 1 == by_name[fleet.names.trigger_dlq]["visible"]
    assert document["ecs_note"]
