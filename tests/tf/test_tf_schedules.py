"""tf/schedules.tf: the schedule group, one schedule per declared entry, the scheduler's role and the alarm."""

from __future__ import annotations

import json
import re

from common.names import FleetNames
from common.schedule_tick import SCHEDULE_NAME_PATTERN, SCHEDULED_TIME_PLACEHOLDER
from fleet.schedules import api

#: The arguments the AWS provider's aws_scheduler_schedule accepts (registry docs, provider 5.x/6.x);
#: no `terraform init` is possible here, so the schema is written down and the config checked against it.
SCHEDULE_ARGUMENTS = frozenset(
    {
        "name",
        "name_prefix",
        "group_name",
        "description",
        "schedule_expression",
        "schedule_expression_timezone",
        "start_date",
        "end_date",
        "state",
        "kms_key_arn",
        "flexible_time_window",
        "target",
        "action_after_completion",
        "for_each",
        "count",
        "region",
    }
)
TARGET_ARGUMENTS = frozenset(
    {
        "arn",
        "role_arn",
        "input",
        "retry_policy",
        "dead_letter_config",
        "ecs_parameters",
        "eventbridge_parameters",
        "kinesis_parameters",
        "sagemaker_pipeline_parameters",
        "sqs_parameters",
    }
)
GROUP_ARGUMENTS = frozenset({"name", "name_prefix", "tags", "region"})


def _names(tf_config) -> FleetNames:
    return FleetNames.for_deployment(tf_config.default("project_name"), tf_config.default("environment"))


def _statements(tf_config, document: str) -> dict[str, dict]:
    return {s.get("sid", ""): s for s in tf_config.data("aws_iam_policy_document", document)["statement"]}


def test_group_and_role_are_named_as_common_names_derives(tf_config) -> None:
    """The CLI and the local fleet find the group and role by FleetNames, so Terraform must agree."""
    names = _names(tf_config)
    group = tf_config.resource("aws_scheduler_schedule_group", "this")["name"]
    role = tf_config.resource("aws_iam_role", "scheduler")["name"]
    assert names.schedule_group == tf_config.render(group)
    assert names.scheduler_role == tf_config.render(role)


def test_one_schedule_per_declared_entry_in_the_group(tf_config) -> None:
    """for_each over var.schedules, named by the declaration's key, inside the prefix's group."""
    schedule = tf_config.resource("aws_scheduler_schedule", "this")
    assert "${var.schedules}" == schedule["for_each"]
    assert "${each.key}" == schedule["name"]
    assert "${aws_scheduler_schedule_group.this.name}" == schedule["group_name"]
    assert "${aws_kms_key.this.arn}" == schedule["kms_key_arn"]
    assert "ENABLED" in schedule["state"]
    assert "DISABLED" in schedule["state"]


def test_schedules_variable_refuses_names_common_refuses(tf_config) -> None:
    """Terraform's own validation uses the same name rule as common.schedule_tick."""
    conditions = " ".join(v["condition"] for v in tf_config.variables["schedules"]["validation"])
    assert f"^{SCHEDULE_NAME_PATTERN.pattern}$" in conditions


def test_target_is_the_trigger_queue_with_the_tick_in_its_input(tf_config) -> None:
    """The input is the trigger plus {name, scheduledTime}, with Scheduler's context attribute unescaped."""
    (target,) = tf_config.resource("aws_scheduler_schedule", "this")["target"]
    assert '${aws_sqs_queue.source["trigger"].arn}' == target["arn"]
    assert "${aws_iam_role.scheduler.arn}" == target["role_arn"]
    # Read from the source: the two hcl2 parsers render an expression's inner objects differently.
    text = re.sub(r"\s+", " ", tf_config.raw_text["schedules.tf"])
    assert (
        "merge(each.value.trigger, { schedule = { name = each.key, scheduledTime = local.scheduled_time_marker } })"
        in text
    )
    # jsonencode would escape "<" as \u003c; the placeholder is substituted after encoding.
    assert 'local.scheduled_time_marker, "<aws.scheduler.scheduled-time>", )' in text
    assert SCHEDULED_TIME_PLACEHOLDER in target["input"]


def test_retries_then_dead_letters_to_the_trigger_dlq(tf_config) -> None:
    """A tick that cannot be delivered is retried, then lands in the trigger DLQ (nothing is lost)."""
    (target,) = tf_config.resource("aws_scheduler_schedule", "this")["target"]
    (retry,) = target["retry_policy"]
    (dead_letter,) = target["dead_letter_config"]
    assert "${var.schedule_retry_attempts}" == retry["maximum_retry_attempts"]
    assert "${var.schedule_max_event_age_seconds}" == retry["maximum_event_age_in_seconds"]
    assert 0 < tf_config.default("schedule_retry_attempts") <= 185
    assert 60 <= tf_config.default("schedule_max_event_age_seconds") <= 86400
    assert '${aws_sqs_queue.dlq["trigger"].arn}' == dead_letter["arn"]


def test_scheduler_role_can_only_send_to_the_trigger_queue_and_its_dlq(tf_config) -> None:
    """sqs:SendMessage on the trigger queue (and its DLQ, for undeliverable ticks); the key only via SQS."""
    statements = _statements(tf_config, "scheduler")
    actions = sorted(a for s in statements.values() for a in s["actions"])
    assert ["kms:Decrypt", "kms:Decrypt", "kms:GenerateDataKey", "sqs:SendMessage", "sqs:SendMessage"] == actions
    assert ['${aws_sqs_queue.source["trigger"].arn}'] == statements["SendTriggers"]["resources"]
    assert ['${aws_sqs_queue.dlq["trigger"].arn}'] == statements["DeadLetterUndeliveredTicks"]["resources"]
    (via,) = statements["UseKeyThroughSqs"]["condition"]
    assert ("kms:ViaService", ["sqs.${var.aws_region}.amazonaws.com"]) == (via["variable"], via["values"])
    assert all(
        s["resources"] == ["${aws_kms_key.this.arn}"] for k, s in statements.items() if "Key" in k or "Decrypt" in k
    )
    assert (
        "${data.aws_iam_policy_document.scheduler.json}"
        == tf_config.resource("aws_iam_role_policy", "scheduler")["policy"]
    )


def test_only_this_accounts_schedule_group_assumes_the_scheduler_role(tf_config) -> None:
    """Trusts scheduler.amazonaws.com with SourceAccount and SourceArn (confused-deputy guard)."""
    (statement,) = tf_config.data("aws_iam_policy_document", "scheduler_assume")["statement"]
    (principal,) = statement["principals"]
    assert ["scheduler.amazonaws.com"] == principal["identifiers"]
    conditions = {c["variable"]: c["values"] for c in statement["condition"]}
    assert {
        "aws:SourceAccount": ["${local.account_id}"],
        "aws:SourceArn": ["${aws_scheduler_schedule_group.this.arn}"],
    } == conditions


def test_alarm_on_the_groups_failed_invocations(tf_config) -> None:
    """Dropped, dead-lettered or lost ticks of the group raise the alarm, to the alarm topic."""
    alarm = tf_config.resource("aws_cloudwatch_metric_alarm", "schedule_invocations_failed")
    assert "${local.alarm_actions}" == alarm["alarm_actions"]
    text = tf_config.raw_text["schedules.tf"]
    for metric in (
        "InvocationDroppedCount",
        "InvocationsSentToDeadLetterCount",
        "InvocationsFailedToBeSentToDeadLetterCount",
    ):
        assert metric in text
    assert "ScheduleGroup = aws_scheduler_schedule_group.this.name" in text
    assert alarm["alarm_name"].startswith("${local.name_prefix}-")


def test_new_resources_use_only_arguments_of_the_provider_schema(tf_config) -> None:
    """Schema-valid without `terraform init`: no argument the provider does not have."""
    schedule = tf_config.resource("aws_scheduler_schedule", "this")
    (target,) = schedule["target"]
    assert set() == set(schedule) - SCHEDULE_ARGUMENTS
    assert set() == set(target) - TARGET_ARGUMENTS
    assert set() == set(tf_config.resource("aws_scheduler_schedule_group", "this")) - GROUP_ARGUMENTS
    (window,) = schedule["flexible_time_window"]
    assert {"mode", "maximum_window_in_minutes"} == set(window)


def test_declaration_file_is_terraform_variables_json(tf_config) -> None:
    """Terraform loads *.auto.tfvars.json by itself: its only top-level key must be a declared variable."""
    document = json.loads((tf_config.directory / "schedules.auto.tfvars.json").read_text(encoding="utf-8"))
    assert {"schedules"} == set(document)
    assert "schedules" in tf_config.variables


def test_local_and_cli_schedules_retry_as_terraforms_do(tf_config) -> None:
    """fleet.schedules.api creates schedules with the retry defaults of tf/schedules.tf."""
    assert api.RETRY_ATTEMPTS == tf_config.default("schedule_retry_attempts")
    assert api.MAX_EVENT_AGE_SECONDS == tf_config.default("schedule_max_event_age_seconds")
