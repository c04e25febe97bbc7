"""Every resource, data and provider block of tf/ checked against the hashicorp/aws schema.

There is no ``terraform init`` here (no registry), so ``terraform validate`` cannot run; the schema of
the types tf/ uses is committed instead, one fixture per provider version the constraint spans: 5.49.0
(the lower bound), 5.100.0 (the lock) and 6.62.0 (a 6.x release). ``tests/tf/provider_schema/extract.py``
regenerates them from the provider's published bindings. The check finds unknown types, arguments and
blocks; a block written as an argument or the reverse; a single block repeated; a required argument or
block missing; a reference to an attribute the type does not have. The mutation tests prove each one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.tf.hcl_structure import Body, parse

SCHEMA_DIR = Path(__file__).resolve().parent / "provider_schema"
TF_DIR = Path(__file__).resolve().parents[2] / "tf"
VERSIONS = ("5.49.0", "5.100.0", "6.62.0")
REGENERATE = "python tests/tf/provider_schema/extract.py <package> (see its docstring)"

#: Terraform's own arguments and blocks, valid in every resource and data block.
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider"})
META_BLOCKS = frozenset({"lifecycle", "provisioner", "connection"})
_REFERENCE = re.compile(
    r"(?<![\w.])(?P<data>data\.)?(?P<type>aws_[a-z0-9_]+)\.(?P<name>[a-z_][a-z0-9_-]*)(?:\[[^\]]*\])?\.(?P<attr>[a-z_][a-z0-9_]*)"
)


@cache
def schema(version: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMA_DIR / f"hashicorp-aws-{version}.json").read_text(encoding="utf-8")))


def _argument_errors(
    body: Body, attributes: dict[str, str], blocks: dict[str, Any], where: str, *, top: bool
) -> list[str]:
    errors = [f"{where}: argument '{name}' set twice" for name in body.repeated_arguments]
    for name, line in body.arguments.items():
        if name in blocks:
            errors.append(f"{where}: line {line}: '{name}' is a block, written as an argument ('{name} = ...')")
        elif name not in attributes and not (top and name in META_ARGUMENTS):
            errors.append(f"{where}: line {line}: unknown argument '{name}'")
    errors += [
        f"{where}: missing required argument '{name}'"
        for name, need in attributes.items()
        if need == "required" and name not in body.arguments
    ]
    return errors


def _nested_errors(
    body: Body, attributes: dict[str, str], blocks: dict[str, Any], where: str, *, top: bool
) -> list[str]:
    errors: list[str] = []
    occurrences: Counter[str] = Counter()
    for block in body.blocks:
        dynamic = block.kind == "dynamic"
        name = block.labels[0] if dynamic and block.labels else block.kind
        if top and name in META_BLOCKS:
            continue
        if name not in blocks:
            what = "is an argument, written as a block" if name in attributes else "is an unknown block"
            errors.append(f"{where}: line {block.line}: '{name}' {what}")
            continue
        occurrences[name] += 2 if dynamic else 1  # a dynamic block may expand to many
        for content in [b for b in block.blocks if b.kind == "content"] if dynamic else [block]:
            errors += _block_errors(content, blocks[name]["block"], f"{where}.{name}", top=False)
    errors += [
        f"{where}: block '{name}' may appear at most once, found {count}"
        for name, count in occurrences.items()
        if blocks[name]["nesting"] == "single" and count > 1
    ]
    errors += [
        f"{where}: missing required block '{name}'"
        for name, spec in blocks.items()
        if spec["required"] and not occurrences[name]
    ]
    return errors


def _block_errors(body: Body, block_schema: dict[str, Any], where: str, *, top: bool) -> list[str]:
    """Arguments and nested blocks of ``body`` against one block schema; ``top`` allows the meta-arguments."""
    attributes, blocks = block_schema["attributes"], block_schema["blocks"]
    return _argument_errors(body, attributes, blocks, where, top=top) + _nested_errors(
        body, attributes, blocks, where, top=top
    )


def _reference_errors(text: str, file: str, known: dict[str, dict[str, Any]]) -> list[str]:
    """``aws_x.name.attr`` and ``data.aws_x.name.attr``: the attribute must exist on the type."""
    errors = []
    code = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())
    for match in _REFERENCE.finditer(code):
        kind = "data_sources" if match["data"] else "resources"
        entity = known[kind].get(match["type"])
        if entity is None:
            continue  # an unknown or unused type is reported with its block
        readable = set(entity["attributes"]) | set(entity["blocks"]) | set(entity["computed"])
        if match["attr"] not in readable:
            line = code.count("\n", 0, match.start()) + 1
            errors.append(f"{file}: line {line}: {match.group(0)}: {match['type']} has no attribute '{match['attr']}'")
    return errors


def _entity_errors(block: Body, file: str, version_schema: dict[str, Any]) -> list[str]:
    where = f"{file}: {block.kind} {'.'.join(block.labels)}"
    if block.kind == "provider":
        if block.labels != ("aws",):
            return [f"{where}: only the aws provider is in the schema"]
        provider = {**version_schema["provider_block"]}
        provider["attributes"] = {**provider["attributes"], "alias": "optional"}
        return _block_errors(block, provider, where, top=False)
    kind, names, entities = (
        ("resource", "resource_types", "resources")
        if block.kind == "resource"
        else ("data source", "data_source_types", "data_sources")
    )
    type_name = block.labels[0]
    if type_name not in version_schema[names]:
        return [f"{where}: unknown {kind} type '{type_name}' in hashicorp/aws {version_schema['version']}"]
    if type_name not in version_schema[entities]:
        return [f"{where}: '{type_name}' is not in the fixture: regenerate it with {REGENERATE}"]
    return _block_errors(block, version_schema[entities][type_name], where, top=True)


def check(files: dict[str, str], version: str) -> list[str]:
    """Every error tf/ (``files``: name -> text) has against hashicorp/aws ``version``."""
    version_schema = schema(version)
    errors: list[str] = []
    for file, text in sorted(files.items()):
        for block in parse(text).blocks:
            # check blocks may hold scoped data sources
            candidates = [block, *block.blocks] if block.kind == "check" else [block]
            for candidate in candidates:
                if candidate.kind in {"resource", "data", "provider"}:
                    errors += _entity_errors(candidate, file, version_schema)
        errors += _reference_errors(text, file, version_schema)
    return errors


def tf_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(TF_DIR.glob("*.tf"))}


def mutated(file: str, old: str, new: str, count: int = 1) -> dict[str, str]:
    files = tf_files()
    assert old in files[file], (file, old)
    files[file] = files[file].replace(old, new, count)
    return files


# --- tf/ as it is ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_tf_matches_the_provider_schema(version: str) -> None:
    """No unknown type, argument or block, no misplaced or repeated block, nothing required missing."""
    assert [] == check(tf_files(), version)


def test_the_fixtures_are_named_for_their_provider_version_and_cover_every_type_tf_uses() -> None:
    """Each fixture says which release and package it came from, and has every type tf/ declares."""
    declared = {
        (block.kind, block.labels[0])
        for text in tf_files().values()
        for block in parse(text).blocks
        if block.kind in {"resource", "data"}
    }
    for version in VERSIONS:
        document = schema(version)
        assert version == document["version"]
        assert "registry.terraform.io/hashicorp/aws" == document["provider"]
        have = {("resource", t) for t in document["resources"]} | {("data", t) for t in document["data_sources"]}
        assert set() == declared - have


def test_the_locked_provider_version_has_a_fixture() -> None:
    """When the lock moves, the schema test must move with it (regenerate the fixture)."""
    lock = (TF_DIR / ".terraform.lock.hcl").read_text(encoding="utf-8")
    (locked,) = re.findall(r'\n\s*version\s*=\s*"([\d.]+)"', lock)
    assert (SCHEMA_DIR / f"hashicorp-aws-{locked}.json").is_file(), REGENERATE


# --- mutations the check must catch -----------------------------------------------------------------

MUTATIONS = {
    "misspelt argument (seed 002)": (
        "sqs.tf",
        "  visibility_timeout_seconds        = each.value",
        "  VisibilityTimeoutSeconds        = each.value",
        "unknown argument 'VisibilityTimeoutSeconds'",
    ),
    "unknown resource type": (
        "dynamodb.tf",
        'resource "aws_dynamodb_table" "jobs"',
        'resource "aws_dynamodb_tables" "jobs"',
        "unknown resource type 'aws_dynamodb_tables'",
    ),
    "unknown data source type": (
        "main.tf",
        'data "aws_partition" "current"',
        'data "aws_partitions" "current"',
        "unknown data source type 'aws_partitions'",
    ),
    "unknown block": (
        "ecs.tf",
        "  deployment_circuit_breaker {",
        "  deployment_breaker {",
        "'deployment_breaker' is an unknown block",
    ),
    "block written as an argument": (
        "ecs.tf",
        "  network_configuration {",
        "  network_configuration = {",
        "'network_configuration' is a block, written as an argument",
    ),
    "argument written as a block": (
        "autoscaling.tf",
        "      dimensions  = { QueueName",
        "      dimensions { QueueName",
        "'dimensions' is an argument, written as a block",
    ),
    "single block repeated": (
        "ecs.tf",
        "  deployment_circuit_breaker {\n    enable   = true\n    rollback = true\n  }\n",
        "  deployment_circuit_breaker {\n    enable   = true\n    rollback = true\n  }\n"
        "  deployment_circuit_breaker {\n    enable   = true\n    rollback = true\n  }\n",
        "block 'deployment_circuit_breaker' may appear at most once, found 2",
    ),
    "missing required argument": (
        "ecs.tf",
        '  family                   = "${local.name_prefix}-${each.value.service}"\n',
        "",
        "missing required argument 'family'",
    ),
    "missing required block": (
        "autoscaling.tf",
        "          metric {\n            namespace",
        "          metric_x {\n            namespace",
        "missing required block 'metric'",
    ),
    "reference to an attribute the type does not have": (
        "iam.tf",
        "resources = [aws_dynamodb_table.jobs.arn]",
        "resources = [aws_dynamodb_table.jobs.table_arn]",
        "aws_dynamodb_table has no attribute 'table_arn'",
    ),
    "misspelt provider argument": (
        "main.tf",
        "  region = var.aws_region",
        "  regoin = var.aws_region",
        "unknown argument 'regoin'",
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("version", VERSIONS)
def test_each_kind_of_mistake_fails_the_check(mutation: str, version: str) -> None:
    """A mutation of today's tf/ that terraform validate would refuse is reported, naming the mistake."""
    file, old, new, expected = MUTATIONS[mutation]

    errors = check(mutated(file, old, new), version)

    assert [error for error in errors if expected in error], errors
