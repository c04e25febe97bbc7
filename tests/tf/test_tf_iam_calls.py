"""Each task role in tf/iam.tf grants exactly the IAM actions its worker's AWS calls need.

Both workers run as their containers do (``python -m <service>``) against the embedded emulator, each
through its own counting proxy (fleet/local/aws_proxy.py), so every call is attributed to the service
that made it. The scenario walks every path that calls AWS: a job that succeeds and ships its log
stream, a long job whose visibility and ledger lease are extended, a job that fails until it is dead,
a redelivered job the ledger refuses, a malformed trigger and a malformed background message (both
quarantined), a trigger whose enqueue fails (released through visibility), and a SIGTERM drain. The
operations seen are mapped to IAM actions and compared, role by role, with the task-role policy
documents: a called action that is not granted fails, and so does a granted one that no call needs.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from common.ledger.schema import ATTR_JOB_TYPE, ATTR_STATUS
from common.messages import BackgroundJob
from common.names import FleetNames
from common.settings import (
    ENV_BACKGROUND_DLQ_URL,
    ENV_BACKGROUND_QUEUE_URL,
    ENV_HEARTBEAT_FILE,
    ENV_JOB_LEDGER_TABLE,
    ENV_JOB_LOG_GROUP,
    ENV_TRIGGER_DLQ_URL,
    ENV_TRIGGER_QUEUE_URL,
)
from fleet.local.aws_proxy import AwsProxy
from fleet.local.emulator import start_emulator, stop_emulator
from fleet.local.provision import QueueUrls, provision
from tests.reliability.harness import EMULATOR_CREDENTIALS, REGION, WorkerProcess, free_port
from tests.waiting import wait_until

#: IAM actions each API operation is authorised as (Service Authorization Reference). A transaction
#: is authorised per item by the item's own action; the ledger writes only Update items.
ACTIONS_OF_OPERATION = {
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "GetQueueUrl": "sqs:GetQueueUrl",
    "UpdateItem": "dynamodb:UpdateItem",
    "TransactWriteItems": "dynamodb:UpdateItem",
    "GetItem": "dynamodb:GetItem",
    "PutItem": "dynamodb:PutItem",
    "Query": "dynamodb:Query",
    "CreateLogStream": "logs:CreateLogStream",
    "PutLogEvents": "logs:PutLogEvents",
    "DescribeLogStreams": "logs:DescribeLogStreams",
}

#: Needed only on AWS, where the service calls KMS with the caller's permissions; the emulator does not
#: encrypt, so no call shows them. Keyed by the action that implies them, per the documented rules:
#: SQS SSE-KMS (SQS Developer Guide, "Key management"): a producer needs kms:GenerateDataKey and
#: kms:Decrypt, a consumer kms:Decrypt; DynamoDB with a customer managed key: reading or writing items
#: needs kms:Decrypt through DynamoDB. The condition value is the kms:ViaService the statement names.
KMS_IMPLIED_BY = {
    "sqs:SendMessage": ("sqs", {"kms:GenerateDataKey", "kms:Decrypt"}),
    "sqs:ReceiveMessage": ("sqs", {"kms:Decrypt"}),
    "dynamodb:UpdateItem": ("dynamodb", {"kms:Decrypt"}),
}

ROLE_OF_SERVICE = {"main_job": "main_job_task", "background_job": "background_job_task"}
PROJECT, ENVIRONMENT = "iamcalls", "test"
SETTINGS = {
    "RECEIVE_WAIT_SECONDS": "1",
    "VISIBILITY_TIMEOUT_SECONDS": "10",
    "SHUTDOWN_GRACE_SECONDS": "10",
    "MAX_RECEIVE_COUNT": "2",
    "RETRY_BASE_SECONDS": "0",
    "RETRY_MAX_SECONDS": "1",
}
LONG_JOB_SECONDS = 4  # past the 10 s visibility's extension interval (visibility / 6)


@dataclass(frozen=True)
class Recorded:
    """The operations each service called, by name, and the queue, table or log group each named."""

    operations: dict[str, set[str]]
    targets: dict[str, set[tuple[str, str]]]


def _trigger(job_type: str, **data: Any) -> str:
    return json.dumps({"trigger": "iam-calls", "jobType": job_type, "data": data})


def _env(endpoint: str, urls: QueueUrls, names: FleetNames) -> dict[str, str]:
    heartbeat = Path(tempfile.mkdtemp(prefix="iam-calls-")) / "worker.heartbeat"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **EMULATOR_CREDENTIALS,
        **SETTINGS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "PYTHONUNBUFFERED": "1",
        ENV_TRIGGER_QUEUE_URL: urls.trigger,
        ENV_TRIGGER_DLQ_URL: urls.trigger_dlq,
        ENV_BACKGROUND_QUEUE_URL: urls.background,
        ENV_BACKGROUND_DLQ_URL: urls.background_dlq,
        ENV_JOB_LOG_GROUP: names.background_job_log_group,
        # Both services are told the table (tf/ecs.tf tells only background_job), so a main_job that still
        # wrote to the ledger would show up here as a call its role does not grant.
        ENV_JOB_LEDGER_TABLE: names.job_ledger_table,
        ENV_HEARTBEAT_FILE: str(heartbeat),
    }


def _ledger(dynamodb: Any, table: str) -> dict[str, list[str]]:
    """Statuses by job type."""
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    found: dict[str, list[str]] = {}
    for item in items:
        found.setdefault(item[ATTR_JOB_TYPE]["S"], []).append(item[ATTR_STATUS]["S"])
    return found


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _run_scenario(sqs: Any, dynamodb: Any, urls: QueueUrls, names: FleetNames, workers: list[WorkerProcess]) -> None:
    sqs.send_message(QueueUrl=urls.trigger, MessageBody=_trigger("main-job-processing"))
    sqs.send_message(QueueUrl=urls.trigger, MessageBody=_trigger("diagnostic-sleep", seconds=LONG_JOB_SECONDS))
    sqs.send_message(QueueUrl=urls.trigger, MessageBody=_trigger("diagnostic-fail"))
    sqs.send_message(QueueUrl=urls.trigger, MessageBody="not json")
    sqs.send_message(QueueUrl=urls.background, MessageBody='{"jobId": 7}')

    def settled() -> dict[str, list[str]] | None:
        for worker in workers:
            assert worker.process.poll() is None, "".join(worker.output[-20:])
        ledger = _ledger(dynamodb, names.job_ledger_table)
        done = {
            "main-job-processing": ["succeeded"],
            "diagnostic-sleep": ["succeeded"],
            "diagnostic-fail": ["dead"],
        }
        return ledger if ledger == done else None

    wait_until(settled, timeout=120, interval=0.5, what="the three jobs succeeded / dead in the ledger")
    wait_until(lambda: _depth(sqs, urls.trigger_dlq) >= 1, timeout=30, what="the malformed trigger quarantined")
    wait_until(lambda: _depth(sqs, urls.background_dlq) >= 1, timeout=30, what="the malformed job quarantined")

    # A redelivery of a job that already succeeded: the claim is refused and the message deleted unrun.
    (succeeded,) = [
        item
        for item in dynamodb.scan(TableName=names.job_ledger_table, ConsistentRead=True)["Items"]
        if item[ATTR_JOB_TYPE]["S"] == "main-job-processing"
    ]
    job = BackgroundJob(
        job_id=succeeded["jobId"]["S"],
        job_type="main-job-processing",
        correlation_id="iam-calls-redelivery",
        trigger={"trigger": "iam-calls"},
        enqueued_at="2026-12-04T00:00:00.000Z",
    )
    sqs.send_message(QueueUrl=urls.background, MessageBody=job.to_body(), MessageAttributes=job.message_attributes())
    wait_until(lambda: workers[1].events("job.duplicate_skipped"), timeout=30, what="the redelivery skipped")


def _fail_one_enqueue(sqs: Any, urls: QueueUrls, main_proxy: AwsProxy) -> None:
    """SendMessageBatch unavailable: main-job retries the trigger through its visibility, then enqueues it."""
    main_proxy.state.set_rules([{"operation": "SendMessageBatch", "kind": "unavailable"}])
    sqs.send_message(QueueUrl=urls.trigger, MessageBody=_trigger("diagnostic-sleep", seconds=0))
    wait_until(
        lambda: {"ChangeMessageVisibility", "ChangeMessageVisibilityBatch"} & set(main_proxy.state.snapshot()["calls"]),
        timeout=60,
        what="main-job releasing the trigger it could not enqueue",
    )
    main_proxy.state.set_rules([])
    wait_until(lambda: _depth(sqs, urls.trigger) == 0, timeout=60, what="the retried trigger enqueued")


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:
    """Run both workers through the scenario, each behind its own proxy; the operations each called."""
    port = free_port()
    emulator = start_emulator(port)
    proxies = {service: AwsProxy(upstream_port=port).start() for service in ROLE_OF_SERVICE}
    workers: list[WorkerProcess] = []
    try:
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the emulator's dummy credentials
            region_name=REGION,
        )
        endpoint = f"http://127.0.0.1:{port}"
        sqs = session.client("sqs", endpoint_url=endpoint)
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        names = FleetNames.for_deployment(PROJECT, ENVIRONMENT)
        urls = provision(
            sqs=sqs,
            logs=session.client("logs", endpoint_url=endpoint),
            names=names,
            visibility_timeout=10,
            max_receive_count=int(SETTINGS["MAX_RECEIVE_COUNT"]),
            receive_wait_seconds=1,
            dynamodb=dynamodb,
        )
        for service in ROLE_OF_SERVICE:
            workers.append(WorkerProcess.start(service, _env(proxies[service].endpoint, urls, names)))
        _run_scenario(sqs, dynamodb, urls, names, workers)
        _fail_one_enqueue(sqs, urls, proxies["main_job"])
        for worker in workers:
            assert 0 == worker.stop(), "".join(worker.output[-20:])
        snapshots = {service: proxy.state.snapshot() for service, proxy in proxies.items()}
        yield Recorded(
            operations={service: set(snapshot["calls"]) for service, snapshot in snapshots.items()},
            targets={
                service: {(target.split(" ", 1)[0], target.split(" ", 1)[1]) for target in snapshot["targets"]}
                for service, snapshot in snapshots.items()
            },
        )
    finally:
        for worker in workers:
            worker.kill()
        for proxy in proxies.values():
            proxy.stop()
        stop_emulator(emulator)


def _granted(tf_config, role_document: str) -> tuple[set[str], dict[str, set[str]]]:
    """Non-KMS actions, and KMS actions by the service of their kms:ViaService condition."""
    actions: set[str] = set()
    kms: dict[str, set[str]] = {}
    for statement in tf_config.data("aws_iam_policy_document", role_document)["statement"]:
        if all(action.startswith("kms:") for action in statement["actions"]):
            (condition,) = statement["condition"]
            assert "kms:ViaService" == condition["variable"]
            (value,) = condition["values"]
            kms.setdefault(value.split(".", 1)[0], set()).update(statement["actions"])
        else:
            actions.update(statement["actions"])
    return actions, kms


def _called(operations: set[str]) -> set[str]:
    unknown = operations - set(ACTIONS_OF_OPERATION)
    assert set() == unknown, "map these operations to their IAM actions"
    return {ACTIONS_OF_OPERATION[operation] for operation in operations}


def _kms_needed(actions: set[str]) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    for action in actions:
        if action in KMS_IMPLIED_BY:
            via, kms_actions = KMS_IMPLIED_BY[action]
            needed.setdefault(via, set()).update(kms_actions)
    return needed


@pytest.mark.parametrize("service", list(ROLE_OF_SERVICE))
def test_every_action_a_worker_calls_is_granted_to_its_task_role(tf_config, recorded: Recorded, service: str) -> None:
    """A call the role does not allow is AccessDenied on AWS, which the emulator never says."""
    granted, _ = _granted(tf_config, ROLE_OF_SERVICE[service])
    assert set() == _called(recorded.operations[service]) - granted


@pytest.mark.parametrize("service", list(ROLE_OF_SERVICE))
def test_a_task_role_grants_no_action_its_worker_never_calls(tf_config, recorded: Recorded, service: str) -> None:
    """Least privilege: GetQueueAttributes and background GetItem were granted and never called."""
    granted, _ = _granted(tf_config, ROLE_OF_SERVICE[service])
    assert set() == granted - _called(recorded.operations[service])


def _resource_expressions() -> dict[str, str]:
    """The local resource each tf/ resource expression names (the emulator uses tf/'s names)."""
    names = FleetNames.for_deployment(PROJECT, ENVIRONMENT)
    group = '${aws_cloudwatch_log_group.this["background_job"].arn}:log-stream:${local.job_stream_root}/*'
    return {
        names.trigger_queue: '${aws_sqs_queue.source["trigger"].arn}',
        names.trigger_dlq: '${aws_sqs_queue.dlq["trigger"].arn}',
        names.background_queue: '${aws_sqs_queue.source["background"].arn}',
        names.background_dlq: '${aws_sqs_queue.dlq["background"].arn}',
        names.job_ledger_table: "${aws_dynamodb_table.jobs.arn}",
        names.background_job_log_group: group,
    }


def _plain(resource: str) -> str:
    """bc-python-hcl2 renders a string template as ``${"...${x}..."}`` and may single-quote keys."""
    resource = resource.replace("'", '"')
    if resource.startswith('${"') and resource.endswith('"}'):
        return resource[3:-2]
    return resource


def _granted_on(tf_config, role_document: str) -> set[tuple[str, str]]:
    """(action, resource expression) for every non-KMS statement of the role."""
    pairs = set()
    for statement in tf_config.data("aws_iam_policy_document", role_document)["statement"]:
        if not all(action.startswith("kms:") for action in statement["actions"]):
            resources = [_plain(resource) for resource in statement["resources"]]
            pairs |= {(action, resource) for action in statement["actions"] for resource in resources}
    return pairs


def _called_on(recorded: Recorded, service: str) -> set[tuple[str, str]]:
    expressions = _resource_expressions()
    unknown = {resource for _, resource in recorded.targets[service]} - set(expressions)
    assert set() == unknown, "a call named a resource this test cannot map to tf/"
    return {(ACTIONS_OF_OPERATION[op], expressions[resource]) for op, resource in recorded.targets[service]}


@pytest.mark.parametrize("service", list(ROLE_OF_SERVICE))
def test_each_action_is_granted_on_exactly_the_resources_it_is_called_on(
    tf_config, recorded: Recorded, service: str
) -> None:
    """SendMessage on the right queue, UpdateItem on the ledger, job streams in the right group: no wider."""
    assert _called_on(recorded, service) == _granted_on(tf_config, ROLE_OF_SERVICE[service])


@pytest.mark.parametrize("service", list(ROLE_OF_SERVICE))
def test_kms_grants_are_exactly_what_the_calls_need_on_aws(tf_config, recorded: Recorded, service: str) -> None:
    """SSE-KMS queues and the CMK-encrypted table need these KMS actions through their service, no more."""
    _, kms = _granted(tf_config, ROLE_OF_SERVICE[service])
    assert _kms_needed(_called(recorded.operations[service])) == kms


def test_the_scenario_reached_every_kind_of_call(recorded: Recorded) -> None:
    """Guards the scenario itself: quarantine, retries, extensions, ledger writes and job logs all ran."""
    assert {
        "ReceiveMessage",
        "SendMessageBatch",
        "DeleteMessageBatch",
        "ChangeMessageVisibilityBatch",
    } <= recorded.operations["main_job"]
    assert {
        "ReceiveMessage",
        "ChangeMessageVisibilityBatch",
        "DeleteMessageBatch",
        "CreateLogStream",
        "PutLogEvents",
        "UpdateItem",
    } <= recorded.operations["background_job"]
