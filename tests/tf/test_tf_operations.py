"""Networking, alarms and producer access behave as docs/terraform.md says (issue 17, items 3, 6, 8, 9)."""

from __future__ import annotations

import hcl2


def test_the_vpc_is_derived_from_the_subnets_not_taken_from_the_default_vpc(tf_config) -> None:
    """subnet_ids without vpc_id used to put the security group in the default VPC."""
    subnet = tf_config.data("aws_subnet", "selected")
    assert "${toset(var.subnet_ids)}" == subnet["for_each"]
    vpc_id = tf_config.locals["vpc_id"]
    assert "local.subnet_vpc_ids[0]" in vpc_id
    assert "var.vpc_id" not in vpc_id
    assert "subnet.vpc_id" in tf_config.locals["subnet_vpc_ids"]
    (lifecycle,) = tf_config.resource("aws_security_group", "tasks")["lifecycle"]
    (precondition,) = lifecycle["precondition"]
    assert "length(local.subnet_vpc_ids) <= 1" in precondition["condition"]
    assert "id == var.vpc_id" in precondition["condition"]


def test_the_default_vpc_is_used_only_without_subnets_and_only_its_default_subnets(tf_config) -> None:
    """The fallback is the default VPC's public default subnets, the case that needs a public IP."""
    assert "${length(var.subnet_ids) == 0 ? 1 : 0}" == tf_config.data("aws_vpc", "default")["count"]
    filters = {f["name"]: f["values"] for f in tf_config.data("aws_subnets", "default")["filter"]}
    assert ["true"] == filters["default-for-az"]


def test_dlq_alarm_keeps_its_state_when_an_idle_dlq_stops_publishing(tf_config) -> None:
    """notBreaching turned the alarm OK ~6 h after the last message arrived, with messages still there."""
    assert "ignore" == tf_config.resource("aws_cloudwatch_metric_alarm", "dlq_has_messages")["treat_missing_data"]


def test_a_check_warns_when_alarms_reach_nobody(tf_config) -> None:
    """alarm_email = null means no subscriber: a check block says so at every plan."""
    document = hcl2.loads(tf_config.raw_text["cloudwatch.tf"])
    text = str(document.get("check"))
    assert "alarms_reach_someone" in text
    assert "var.alarm_email != " in text


def test_producer_policy_output_allows_sending_to_the_encrypted_trigger_queue_only(tf_config) -> None:
    """SendMessage on the trigger queue plus the KMS data key SQS generates for the producer."""
    statements = {s["sid"]: s for s in tf_config.data("aws_iam_policy_document", "trigger_producer")["statement"]}
    assert ['${aws_sqs_queue.source["trigger"].arn}'] == [
        r.replace("'", '"') for r in statements["SendTriggers"]["resources"]
    ]
    assert "sqs:SendMessage" in statements["SendTriggers"]["actions"]
    assert {"kms:GenerateDataKey", "kms:Decrypt"} == set(statements["EncryptTriggersThroughSqs"]["actions"])
    output = tf_config.outputs["trigger_producer_policy_json"]["value"]
    assert "${data.aws_iam_policy_document.trigger_producer.json}" == output


def test_docs_state_the_slow_first_scale_from_zero_and_offer_a_warm_task(tf_config) -> None:
    """After ~6 h idle SQS metrics can lag 15 minutes: docs/terraform.md must not promise 2-4 minutes only."""
    text = (tf_config.directory.parent / "docs" / "terraform.md").read_text(encoding="utf-8")
    section = text[text.index("**2. Scale from zero.**") : text.index("**3. Scale to zero when idle.**")]
    assert "up to 15 minutes" in section
    assert "min_capacity = 1" in section


#: The slowest Fargate cold start docs/terraform.md plans for (image pull, start, first long poll).
COLD_START_SECONDS = 240


def test_scale_from_zero_cooldown_outlasts_a_cold_start(tf_config) -> None:
    """A 60 s cooldown let the still-alarming policy add a second and third task during one cold start."""
    (step,) = tf_config.resource("aws_appautoscaling_policy", "scale_from_zero")["step_scaling_policy_configuration"]
    assert "ChangeInCapacity" == step["adjustment_type"]
    assert tf_config.resolve(step["cooldown"]) > COLD_START_SECONDS


def test_services_start_only_after_every_policy_of_their_roles_is_attached(tf_config) -> None:
    """With min_capacity >= 1 a first apply starts tasks at once: task-role policies must already be there."""
    depends_on = set(tf_config.resource("aws_ecs_service", "this")["depends_on"])
    (services,) = tf_config.locals["services"]
    role_arns = {service[key] for (service,) in services.values() for key in ("execution_role_arn", "task_role_arn")}
    roles = {arn.removeprefix("${aws_iam_role.").removesuffix(".arn}") for arn in role_arns}
    attached = {
        f"${{aws_iam_role_policy.{block.labels[1]}}}"
        for block in tf_config.resources("aws_iam_role_policy")
        if block.body["role"] in {f"${{aws_iam_role.{role}.id}}" for role in roles}
    }
    assert 4 == len(attached)
    assert set() == attached - depends_on
