"""Structural checks that `terraform validate` would make, done with python-hcl2 (no terraform here)."""

from __future__ import annotations

import re

import hcl2

EXPECTED_FILES = (
    "versions.tf",
    "variables.tf",
    "main.tf",
    "kms.tf",
    "sqs.tf",
    "ecr.tf",
    "iam.tf",
    "ecs.tf",
    "cloudwatch.tf",
    "autoscaling.tf",
    "dynamodb.tf",
    "backend.tf",
    "outputs.tf",
)

#: Outputs deploy.sh reads with `terraform output -raw <name>`.
DEPLOY_OUTPUTS = (
    "trigger_queue_url",
    "trigger_dlq_url",
    "background_queue_url",
    "background_dlq_url",
    "ecs_cluster_name",
    "main_job_service_name",
    "background_job_service_name",
    "main_job_log_group_name",
    "background_job_log_group_name",
    "main_job_ecr_repository_url",
    "background_job_ecr_repository_url",
    "sns_topic_arn",
    "aws_region",
)

_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")
_DATA_REF = re.compile(r"\bdata\.([a-z0-9_]+)\.([A-Za-z_][\w-]*)")
_RESOURCE_REF = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")


def _expressions(tf_config) -> list[str]:
    """Every string that contains an interpolation, from every block and every local."""
    everything = [block.body for block in tf_config.blocks] + [tf_config.locals]
    return [text for body in everything for text in tf_config.strings_in(body) if "${" in text]


def test_every_file_the_issue_lists_exists_and_parses(tf_config) -> None:
    """The layout is split by concern, and each file is valid HCL2."""
    for name in (*EXPECTED_FILES, "terraform.tfvars.example"):
        path = tf_config.directory / name
        assert path.is_file(), name
        hcl2.loads(path.read_text(encoding="utf-8"))


def test_versions_pin_terraform_and_aws_provider_with_both_bounds(tf_config) -> None:
    """Unbounded versions break applies silently when a new major version ships."""
    text = tf_config.raw_text["versions.tf"]
    assert re.search(r'required_version\s*=\s*">=\s*[\d.]+,\s*<\s*[\d.]+"', text)
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text)
    assert re.search(r'version\s*=\s*">=\s*[\d.]+,\s*<\s*[\d.]+"', text)


def test_every_variable_has_description_type_and_default_in_that_order(tf_config) -> None:
    """terraform-aws-modules style: readers find the same three facts in the same place."""
    for name, body in tf_config.variables.items():
        keys = [key for key in body if key in {"description", "type", "default"}]
        assert keys == ["description", "type", "default"], name
        assert str(body["description"]).strip(), name


def test_every_referenced_variable_is_declared(tf_config) -> None:
    """A typo in var.x is a plan-time error; catch it here instead."""
    referenced = {name for text in _expressions(tf_config) for name in _VAR_REF.findall(text)}
    assert referenced, "no var.x references found: the parser output changed shape"
    assert referenced - set(tf_config.variables) == set()


def test_every_declared_variable_is_used(tf_config) -> None:
    """An unused input misleads whoever sets it."""
    referenced = {name for text in _expressions(tf_config) for name in _VAR_REF.findall(text)}
    assert set(tf_config.variables) - referenced == set()


def test_every_referenced_local_is_defined(tf_config) -> None:
    """local.x must exist in some locals block."""
    referenced = {name for text in _expressions(tf_config) for name in _LOCAL_REF.findall(text)}
    assert referenced - set(tf_config.locals) == set()


def test_every_resource_and_data_reference_resolves(tf_config) -> None:
    """Each aws_x.y and data.aws_x.y names a block declared in tf/."""
    resources = {block.labels for block in tf_config.resources()}
    data = {block.labels for block in tf_config.of_kind("data")}
    seen_resources: set[tuple[str, str]] = set()
    for text in _expressions(tf_config):
        for data_ref in _DATA_REF.findall(text):
            assert data_ref in data, f"data.{'.'.join(data_ref)} is not declared"
        without_data = _DATA_REF.sub("", text)
        for resource_ref in _RESOURCE_REF.findall(without_data):
            assert resource_ref in resources, f"{'.'.join(resource_ref)} is not declared"
            seen_resources.add(resource_ref)
    assert len(seen_resources) > 20, "too few references found: the parser output changed shape"


def test_no_two_blocks_share_an_address(tf_config) -> None:
    """Terraform rejects duplicate addresses; so do we."""
    addresses = [(block.kind, block.labels) for block in tf_config.blocks]
    assert len(addresses) == len(set(addresses))


def test_outputs_deploy_sh_reads_exist_and_point_at_declared_resources(tf_config) -> None:
    """deploy.sh depends on these exact names; each must reference something real."""
    outputs = tf_config.outputs
    assert set(DEPLOY_OUTPUTS) <= set(outputs)
    resources = {block.labels for block in tf_config.resources()}
    for name, body in outputs.items():
        assert str(body.get("description", "")).strip(), f"output {name} has no description"
        value = str(body["value"])
        data = _DATA_REF.findall(value)
        refs = _RESOURCE_REF.findall(_DATA_REF.sub("", value))
        plain = _VAR_REF.findall(value)
        assert refs or plain or data, f"output {name} references nothing"
        declared_data = {block.labels for block in tf_config.of_kind("data")}
        assert set(data) <= declared_data, f"output {name} points at undeclared data"
        for ref in refs:
            assert ref in resources, f"output {name} points at undeclared {'.'.join(ref)}"


def test_tfvars_example_sets_only_declared_variables(tf_config) -> None:
    """A copied example must not fail with 'undeclared variable'."""
    example = hcl2.loads((tf_config.directory / "terraform.tfvars.example").read_text(encoding="utf-8"))
    assert {key for key in example if not key.startswith("__")} <= set(tf_config.variables)
