"""The job ledger table in tf/dynamodb.tf is the one common/ledger/schema.py describes, with least privilege."""

from __future__ import annotations

from common import settings
from common.ledger import schema
from common.ledger.schema import DAY_INDEX, DEFAULT_RETENTION_DAYS, FAILURES_INDEX
from common.names import FleetNames
from common.settings import LEDGER_UNAVAILABLE_POLICIES, Settings


def _table(tf_config) -> dict:
    return tf_config.resource("aws_dynamodb_table", "jobs")


def _statements(tf_config, document: str) -> dict[str, dict]:
    return {s["sid"]: s for s in tf_config.data("aws_iam_policy_document", document)["statement"]}


def test_table_name_key_index_and_ttl_are_the_ledger_schema_constants(tf_config) -> None:
    """Name, hash key, GSI and TTL attribute equal common/ledger/schema.py and FleetNames.job_ledger_table."""
    names = FleetNames.for_deployment(tf_config.default("project_name"), tf_config.default("environment"))
    table = _table(tf_config)
    assert table["name"] == "${local.job_ledger_table_name}"
    assert names.job_ledger_table == tf_config.render(tf_config.locals["job_ledger_table_name"])
    assert schema.ATTR_JOB_ID == table["hash_key"]
    assert "range_key" not in table
    attributes = {a["name"]: a["type"] for a in table["attribute"]}
    assert {schema.ATTR_JOB_ID: "S", schema.ATTR_QUEUED_DAY: "S", schema.ATTR_FAILED_DAY: "S"} == attributes
    indexes = [
        (index["name"], index["hash_key"], index["range_key"], index["projection_type"])
        for index in table["global_secondary_index"]
    ]
    assert [
        (DAY_INDEX, schema.ATTR_QUEUED_DAY, schema.ATTR_JOB_ID, "KEYS_ONLY"),
        (FAILURES_INDEX, schema.ATTR_FAILED_DAY, schema.ATTR_JOB_ID, "KEYS_ONLY"),
    ] == indexes
    (ttl,) = table["ttl"]
    assert {"attribute_name": schema.ATTR_EXPIRES_AT, "enabled": True} == ttl


def test_table_is_on_demand_encrypted_with_the_fleet_key_recoverable_and_protected(tf_config) -> None:
    """PAY_PER_REQUEST, SSE with aws_kms_key.this, point-in-time recovery, deletion protection variable."""
    table = _table(tf_config)
    assert "PAY_PER_REQUEST" == table["billing_mode"]
    (sse,) = table["server_side_encryption"]
    assert {"enabled": True, "kms_key_arn": "${aws_kms_key.this.arn}"} == sse
    (pitr,) = table["point_in_time_recovery"]
    assert pitr["enabled"] is True
    assert "${var.job_ledger_deletion_protection}" == table["deletion_protection_enabled"]
    assert tf_config.default("job_ledger_deletion_protection") is True


def test_ledger_variables_default_to_the_worker_defaults(tf_config) -> None:
    """Retention 30 days and the retry policy, the same as a worker started without the variables."""
    defaults = Settings(service="background-job")
    assert (
        DEFAULT_RETENTION_DAYS == tf_config.default("job_ledger_retention_days") == defaults.job_ledger_retention_days
    )
    assert defaults.job_ledger_unavailable == tf_config.default("job_ledger_unavailable")
    (validation,) = tf_config.variables["job_ledger_unavailable"]["validation"]
    for policy in LEDGER_UNAVAILABLE_POLICIES:
        assert policy in validation["condition"].replace("'", '"').split('"')


def test_background_task_gets_the_ledger_table_and_its_settings(tf_config) -> None:
    """JOB_LEDGER_TABLE is the table's name; retention and policy come from the validated variables."""
    (environment,) = tf_config.locals["background_job_environment"]
    ledger = {k: v for k, v in environment.items() if k.startswith("JOB_LEDGER_")}
    assert {
        settings.ENV_JOB_LEDGER_TABLE,
        settings.ENV_JOB_LEDGER_RETENTION_DAYS,
        settings.ENV_JOB_LEDGER_UNAVAILABLE,
    } == set(ledger)
    assert "${aws_dynamodb_table.jobs.name}" == ledger[settings.ENV_JOB_LEDGER_TABLE]
    assert "${var.job_ledger_retention_days}" == ledger[settings.ENV_JOB_LEDGER_RETENTION_DAYS]


def test_main_job_task_gets_no_ledger_setting(tf_config) -> None:
    """main_job writes nothing to the ledger (the claim creates a job's item), so it is not told the table."""
    (environment,) = tf_config.locals["main_job_environment"]
    assert set() == {name for name in environment if name.startswith("JOB_LEDGER_")}


def test_background_task_role_gets_only_updateitem_on_the_table(tf_config) -> None:
    """Single-item conditional UpdateItems; a refusal is answered from its old image, so no worker reads."""
    statements = _statements(tf_config, "background_job_task")
    dynamodb = [s for s in statements.values() if any(a.startswith("dynamodb:") for a in s["actions"])]
    assert [statements["ClaimAndRecordJobs"]] == dynamodb
    assert ["dynamodb:UpdateItem"] == statements["ClaimAndRecordJobs"]["actions"]
    assert ["${aws_dynamodb_table.jobs.arn}"] == statements["ClaimAndRecordJobs"]["resources"]


def test_main_job_task_role_gets_nothing_on_dynamodb(tf_config) -> None:
    """main_job makes no DynamoDB call, so its role has no DynamoDB action and no KMS use through DynamoDB."""
    statements = _statements(tf_config, "main_job_task")
    actions = {action for statement in statements.values() for action in statement["actions"]}
    assert set() == {action for action in actions if action.startswith("dynamodb:")}
    conditions = [condition for statement in statements.values() for condition in statement.get("condition", [])]
    via = {
        value for condition in conditions if condition["variable"] == "kms:ViaService" for value in condition["values"]
    }
    assert set() == {value for value in via if value.startswith("dynamodb.")}


def test_operator_reader_policy_reads_items_and_queries_only_the_two_day_indexes(tf_config) -> None:
    """GetItem/BatchGetItem on the table, Query on by-day and failures only (no Scan), kms:Decrypt; an output."""
    statements = _statements(tf_config, "job_ledger_reader")
    assert (["dynamodb:GetItem", "dynamodb:BatchGetItem"], ["${aws_dynamodb_table.jobs.arn}"]) == (
        statements["ReadJobs"]["actions"],
        statements["ReadJobs"]["resources"],
    )
    indexes = [f"${{aws_dynamodb_table.jobs.arn}}/index/{name}" for name in (DAY_INDEX, FAILURES_INDEX)]
    assert (["dynamodb:Query"], indexes) == (
        statements["ListJobsByDay"]["actions"],
        statements["ListJobsByDay"]["resources"],
    )
    assert ["kms:Decrypt"] == statements["DecryptThroughDynamoDb"]["actions"]
    granted = {action for statement in statements.values() for action in statement["actions"]}
    assert {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "kms:Decrypt"} == granted
    outputs = tf_config.outputs
    assert "${data.aws_iam_policy_document.job_ledger_reader.json}" == outputs["job_ledger_reader_policy_json"]["value"]
    assert "aws_dynamodb_table.jobs.name" in outputs["job_ledger_table_name"]["value"]
    assert "aws_dynamodb_table.jobs.arn" in outputs["job_ledger_table_arn"]["value"]
    assert f'"{schema.ATTR_QUEUED_DAY}"' in outputs["job_ledger_day_index_name"]["value"]
    assert f'"{schema.ATTR_FAILED_DAY}"' in outputs["job_ledger_failures_index_name"]["value"]


def test_operator_canceller_policy_writes_only_the_cancel_attributes(tf_config) -> None:
    """fleet cancel's UpdateItem, limited by dynamodb:Attributes to exactly what request_cancel writes."""
    statements = _statements(tf_config, "job_canceller")
    cancel = statements["CancelJobs"]
    (condition,) = cancel["condition"]
    written = {
        schema.ATTR_JOB_ID,
        schema.ATTR_STATUS,
        schema.ATTR_CANCEL_REQUESTED_AT,
        schema.ATTR_CANCELLED_BY,
        schema.ATTR_CANCEL_REASON,
        schema.ATTR_UPDATED_AT,
        schema.ATTR_EXPIRES_AT,
        schema.ATTR_QUEUED_DAY,
    }
    assert (["dynamodb:UpdateItem"], ["${aws_dynamodb_table.jobs.arn}"]) == (cancel["actions"], cancel["resources"])
    assert ("ForAllValues:StringEquals", "dynamodb:Attributes") == (condition["test"], condition["variable"])
    assert written == set(condition["values"])
    output = tf_config.outputs["job_canceller_policy_json"]["value"]
    assert "${data.aws_iam_policy_document.job_canceller.json}" == output
