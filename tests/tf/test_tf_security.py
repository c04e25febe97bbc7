"""Security properties the issue requires, read from the parsed configuration."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

#: checkov has a venv of its own (./deploy.sh test makes it): its boto3 pin must not decide the tests' SDK.
CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


def _policy_statements(tf_config, data_name: str) -> list[dict]:
    return tf_config.data("aws_iam_policy_document", data_name)["statement"]


def test_kms_key_rotates_and_has_an_alias(tf_config) -> None:
    """A customer-managed key with yearly rotation, addressable by a readable alias."""
    key = tf_config.resource("aws_kms_key", "this")
    assert key["enable_key_rotation"] is True
    assert tf_config.resource("aws_kms_alias", "this")["target_key_id"] == "${aws_kms_key.this.key_id}"


def test_kms_key_policy_is_inline_and_scopes_each_service_principal(tf_config) -> None:
    """Logs only for our log groups; CloudWatch only for this account's alarms of this deployment."""
    policy = str(tf_config.resource("aws_kms_key", "this")["policy"])
    assert "logs.${var.aws_region}.amazonaws.com" in policy
    assert "kms:EncryptionContext:aws:logs:arn" in policy
    assert "local.log_group_arns_for_kms" in policy
    cloudwatch = policy[policy.index("cloudwatch.amazonaws.com") :]
    cloudwatch = cloudwatch[: cloudwatch.index("Sid") if "Sid" in cloudwatch else None]
    assert "aws:SourceAccount" in cloudwatch
    assert "local.account_id" in cloudwatch
    assert "aws:SourceArn" in cloudwatch
    assert ":alarm:${local.name_prefix}-*" in cloudwatch
    # The root statement delegates to IAM, so a ViaService condition in the key policy restricts nothing.
    assert "aws_iam_role.main_job_task.arn" not in policy


@pytest.mark.parametrize(
    "document", ["main_job_task", "background_job_task", "trigger_producer", "job_ledger_reader", "job_canceller"]
)
def test_every_iam_kms_statement_is_limited_to_a_service_by_via_service(tf_config, document: str) -> None:
    """kms:ViaService belongs on the IAM statements: that is where the key's use is decided."""
    kms = [s for s in _policy_statements(tf_config, document) if s["actions"][0].startswith("kms:")]
    assert kms, document
    for statement in kms:
        (condition,) = statement["condition"]
        assert (condition["test"], condition["variable"]) == ("StringEquals", "kms:ViaService")
        (service,) = condition["values"]
        assert re.fullmatch(r"(sqs|dynamodb)\.\$\{var\.aws_region\}\.amazonaws\.com", service), service


def test_every_queue_topic_log_group_and_repository_uses_the_key(tf_config) -> None:
    """Nothing at rest falls back to an AWS-owned key."""
    assert tf_config.resource("aws_sqs_queue", "source")["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    assert tf_config.resource("aws_sqs_queue", "dlq")["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    assert tf_config.resource("aws_sns_topic", "alarms")["kms_master_key_id"] == "${aws_kms_key.this.id}"
    assert tf_config.resource("aws_cloudwatch_log_group", "this")["kms_key_id"] == "${aws_kms_key.this.arn}"
    (encryption,) = tf_config.resource("aws_ecr_repository", "this")["encryption_configuration"]
    assert encryption == {"encryption_type": "KMS", "kms_key": "${aws_kms_key.this.arn}"}


def test_every_queue_denies_requests_without_tls(tf_config) -> None:
    """aws:SecureTransport=false is denied on all four queues."""
    (statement,) = _policy_statements(tf_config, "queue_tls_only")
    assert statement["effect"] == "Deny"
    (condition,) = statement["condition"]
    assert (condition["variable"], condition["values"]) == ("aws:SecureTransport", ["false"])
    assert tf_config.locals["all_queues"].count("aws_sqs_queue.source") == 1
    assert "aws_sqs_queue.dlq" in tf_config.locals["all_queues"]
    assert tf_config.resource("aws_sqs_queue_policy", "tls_only")["for_each"] == "${local.all_queues}"


def test_redrive_is_explicit_and_each_dlq_allows_only_its_source(tf_config) -> None:
    """Source -> DLQ by ARN with maxReceiveCount; DLQ accepts redrive only from that source."""
    redrive = str(tf_config.resource("aws_sqs_queue", "source")["redrive_policy"])
    assert "aws_sqs_queue.dlq[each.key].arn" in redrive
    allow = str(tf_config.resource("aws_sqs_queue_redrive_allow_policy", "dlq")["redrive_allow_policy"])
    assert re.search(r"redrivePermission\W+byQueue", allow)
    assert "aws_sqs_queue.source[each.key].arn" in allow


def test_dlq_keeps_messages_longer_than_its_source_queue(tf_config) -> None:
    """Redriven messages keep their original enqueue time, so a shorter DLQ retention loses them."""
    assert tf_config.default("dlq_message_retention_seconds") > tf_config.default("queue_message_retention_seconds")
    (lifecycle,) = tf_config.resource("aws_sqs_queue", "dlq")["lifecycle"]
    (precondition,) = lifecycle["precondition"]
    assert "var.dlq_message_retention_seconds > var.queue_message_retention_seconds" in precondition["condition"]


def test_iam_statements_name_their_resources(tf_config) -> None:
    """No '*' resource except ecr:GetAuthorizationToken, which has no resource-level permissions."""
    documents = ["main_job_task", "background_job_task", "execution"]
    for name in documents:
        for statement in _policy_statements(tf_config, name):
            if statement["resources"] == ["*"]:
                assert statement["actions"] == ["ecr:GetAuthorizationToken"], (name, statement["sid"])
            assert "*" not in "".join(statement["actions"]), (name, statement["sid"])


def test_task_roles_get_exactly_the_queue_actions_the_issue_lists(tf_config) -> None:
    """main-job: consume, enqueue, quarantine. background-job: consume, quarantine, write its job logs."""
    main = {s["sid"]: (s["actions"], s["resources"]) for s in _policy_statements(tf_config, "main_job_task")}
    assert main["EnqueueBackgroundJobs"] == (
        ["sqs:SendMessage"],
        ['${aws_sqs_queue.source["background"].arn}'],
    )
    assert main["QuarantineToTriggerDlq"] == (["sqs:SendMessage"], ['${aws_sqs_queue.dlq["trigger"].arn}'])
    assert main["ConsumeTriggerQueue"][1] == ['${aws_sqs_queue.source["trigger"].arn}']
    background = {
        s["sid"]: (s["actions"], s["resources"]) for s in _policy_statements(tf_config, "background_job_task")
    }
    assert background["ConsumeBackgroundQueue"][1] == ['${aws_sqs_queue.source["background"].arn}']
    assert background["QuarantineToBackgroundDlq"] == (
        ["sqs:SendMessage"],
        ['${aws_sqs_queue.dlq["background"].arn}'],
    )
    actions, resources = background["WritePerJobLogStreams"]
    assert actions == ["logs:CreateLogStream", "logs:PutLogEvents"]
    (resource,) = resources
    assert 'aws_cloudwatch_log_group.this["background_job"].arn}:log-stream:${local.job_stream_root}/*' in resource


def test_services_have_no_public_ip_no_load_balancer_and_no_ingress(tf_config) -> None:
    """Workers only call out over HTTPS; nothing can connect to them."""
    service = tf_config.resource("aws_ecs_service", "this")
    assert "load_balancer" not in service
    (network,) = service["network_configuration"]
    # A public IP only for the default-VPC trial (public subnets, no NAT): no ingress rule exists.
    assert network["assign_public_ip"] == "${local.use_default_vpc}"
    assert tf_config.locals["use_default_vpc"] == "${length(var.subnet_ids) == 0}"
    assert tf_config.resources("aws_vpc_security_group_ingress_rule") == []
    assert "ingress" not in tf_config.resource("aws_security_group", "tasks")
    egress = tf_config.resources("aws_vpc_security_group_egress_rule")
    assert [(e.body["from_port"], e.body["to_port"], e.body["ip_protocol"]) for e in egress] == [(443, 443, "tcp")]


def test_task_definitions_run_hardened_containers(tf_config) -> None:
    """Non-root, read-only root, /tmp the one writable volume, no capabilities, non-blocking awslogs."""
    task = tf_config.resource("aws_ecs_task_definition", "this")
    assert task["execution_role_arn"] != task["task_role_arn"]
    (volume,) = task["volume"]
    assert volume == {"name": "tmp"}
    definitions = str(task["container_definitions"])
    for pattern in (
        r"user\W+10001:10001",
        r"readonlyRootFilesystem\W+(?:true|True)",
        r"containerPath\W+/tmp",
        r"drop\W+\[\W*ALL",
        r"logDriver\W+awslogs",
        r"mode\W+non-blocking",
        r"max-buffer-size",
        r"awslogs-stream-prefix",
        r"CMD\W+python\W+-m\W+common\.health",
    ):
        assert re.search(pattern, definitions), pattern


def test_cluster_has_container_insights_and_both_fargate_capacity_providers(tf_config) -> None:
    """RunningTaskCount (used by scaling) comes from Container Insights; the Spot mix is a variable."""
    (setting,) = tf_config.resource("aws_ecs_cluster", "this")["setting"]
    assert setting == {"name": "containerInsights", "value": "enabled"}
    providers = tf_config.resource("aws_ecs_cluster_capacity_providers", "this")
    assert providers["capacity_providers"] == ["FARGATE", "FARGATE_SPOT"]
    strategy = tf_config.resource("aws_ecs_service", "this")["capacity_provider_strategy"]
    assert {s["capacity_provider"] for s in strategy} == {"FARGATE", "FARGATE_SPOT"}
    assert all("var.capacity_provider_strategy" in str(s["weight"]) for s in strategy)


def test_ecr_repositories_scan_on_push_keep_tags_immutable_and_expire_old_images(tf_config) -> None:
    """Every pushed image is scanned, a tag always means the same image, and storage stays bounded."""
    repository = tf_config.resource("aws_ecr_repository", "this")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    (scanning,) = repository["image_scanning_configuration"]
    assert scanning["scan_on_push"] is True
    lifecycle = str(tf_config.resource("aws_ecr_lifecycle_policy", "this")["policy"])
    assert "imageCountMoreThan" in lifecycle
    assert "var.ecr_keep_last_images" in lifecycle


def test_checkov_reports_no_failed_checks(tf_config) -> None:
    """Every checkov policy passes; a skip is only allowed inline with a reason."""
    assert CHECKOV.exists() or shutil.which("checkov"), "checkov is not installed: ./deploy.sh test makes .venv-checkov"
    executable = str(CHECKOV) if CHECKOV.exists() else str(shutil.which("checkov"))
    result = subprocess.run(
        [executable, "-d", str(tf_config.directory), "--quiet", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        # checkov runs in its own interpreter; a PYTHONPATH meant for the tests must not leak into it.
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert (summary["failed"], summary["parsing_errors"]) == (0, 0), result.stdout[:4000]
    assert summary["passed"] > 100
    for text in tf_config.raw_text.values():
        for skip in re.findall(r"checkov:skip=([^\n]*)", text):
            assert re.fullmatch(r"CKV2?_[A-Z]+_\d+:\s*\S.{10,}", skip), f"skip without a reason: {skip}"


@pytest.mark.parametrize("name", ["terraform.tfvars.example"])
def test_example_values_keep_the_contract(tf_config, name: str) -> None:
    """The example must not teach a visibility timeout below the worker's accepted minimum."""
    text = (tf_config.directory / name).read_text(encoding="utf-8")
    for value in re.findall(r"visibility_timeout_seconds\s*=\s*(\d+)", text):
        assert int(value) >= 10
