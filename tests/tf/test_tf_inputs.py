"""Inputs are validated the way AWS and the workers validate them, so a bad value fails at plan time."""

from __future__ import annotations

import re

import hcl2
import pytest

from common.names import BACKGROUND_JOB_SERVICE
from common.settings import (
    ENV_JOB_LEDGER_RETENTION_DAYS,
    ENV_RETRY_BASE_SECONDS,
    ENV_RETRY_MAX_SECONDS,
    REQUIRED_ENV,
    ConfigError,
    Settings,
)

#: AWS name limits of the resources whose names grow with the prefix.
NAME_LIMITS = {"aws_iam_role": 64, "aws_sqs_queue": 80, "aws_dynamodb_table": 255}
#: Provider release that introduced an argument this configuration uses.
MIN_PROVIDER_FOR = {"rotation_period_in_days": (5, 49, 0)}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _unwrap(value: object) -> object:
    """bc-python-hcl2 wraps attribute values in one-element lists."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return value


def _conditions(tf_config, variable: str) -> list[str]:
    return [str(v["condition"]) for v in tf_config.variables[variable].get("validation", [])]


def _prefix_limit(tf_config) -> int:
    for condition in _conditions(tf_config, "environment"):
        match = re.search(r'length\("\$\{var\.project_name\}-\$\{var\.environment\}"\)\s*<=\s*(\d+)', condition)
        if match:
            return int(match.group(1))
    raise AssertionError("no validation bounds the length of <project_name>-<environment>")


def _name_templates(tf_config) -> list[tuple[str, str]]:
    (queue_names,) = tf_config.locals["queue_names"]
    names = [("aws_sqs_queue", template) for template in queue_names.values()]
    names += [("aws_iam_role", block.body["name"]) for block in tf_config.resources("aws_iam_role")]
    names += [("aws_dynamodb_table", tf_config.locals["job_ledger_table_name"])]
    return names


def test_the_longest_allowed_prefix_keeps_every_name_within_its_aws_limit(tf_config) -> None:
    """With default project and 'development' the execution role reached 65 characters; now refused."""
    limit = _prefix_limit(tf_config)
    for kind, template in _name_templates(tf_config):
        rendered = template.replace("${local.name_prefix}", "p" * limit)
        assert "${" not in rendered, template
        assert len(rendered) <= NAME_LIMITS[kind], (kind, rendered)
    default_project = tf_config.default("project_name")
    assert len(f"{default_project}-development") > limit


def test_provider_lower_bound_covers_every_argument_used(tf_config) -> None:
    """rotation_period_in_days needs hashicorp/aws 5.49; the bound must not allow older releases."""
    text = tf_config.raw_text["versions.tf"]
    (lower,) = re.findall(r'\bversion\s*=\s*">=\s*([\d.]+),', text)
    for argument, needed in MIN_PROVIDER_FOR.items():
        if any(argument in body for body in tf_config.raw_text.values()):
            assert _version(lower) >= needed, argument


def test_lock_file_pins_one_aws_version_inside_the_constraint_with_checksums(tf_config) -> None:
    """.terraform.lock.hcl is committed in terraform's format: version, the constraint, zh: hashes."""
    lock = hcl2.loads((tf_config.directory / ".terraform.lock.hcl").read_text(encoding="utf-8"))
    (provider,) = lock["provider"]
    ((address, body),) = provider.items()
    assert address.strip('"') == "registry.terraform.io/hashicorp/aws"
    version = str(_unwrap(body["version"])).strip('"')
    constraints = str(_unwrap(body["constraints"])).strip('"')
    (declared,) = re.findall(r'\n\s*version\s*=\s*"([^"]+)"', tf_config.raw_text["versions.tf"])
    assert declared == constraints
    low, high = re.fullmatch(r">=\s*([\d.]+),\s*<\s*([\d.]+)", constraints).groups()  # type: ignore[union-attr]
    assert _version(low) <= _version(version) < _version(high)
    hashes = re.findall(r'"((?:zh|h1):[^"]+)"', str(body["hashes"]).replace("'", '"'))
    assert len(hashes) >= 10
    assert all(re.fullmatch(r"zh:[0-9a-f]{64}|h1:[A-Za-z0-9+/]{43}=", h) for h in hashes), hashes


@pytest.mark.parametrize(
    "variable",
    ["shutdown_grace_seconds", "trigger_queue_visibility_timeout_seconds", "max_receive_count", "max_attempts"],
)
def test_integer_inputs_reject_fractions(tf_config, variable: str) -> None:
    """stopTimeout = grace + 5 is an integer in ECS: 30.5 must fail validation, not the apply."""
    assert any(f"floor(var.{variable}) == var.{variable}" in c for c in _conditions(tf_config, variable)), variable


@pytest.mark.parametrize("service", ["main_job", "background_job"])
def test_service_sizes_counts_and_concurrency_reject_fractions(tf_config, service: str) -> None:
    """WORKER_CONCURRENCY=10.5 stops the worker at start-up; ECS refuses fractional counts and sizes."""
    conditions = " ".join(_conditions(tf_config, service))
    assert "floor(value) == value" in conditions
    for field in ("cpu", "memory", "concurrency", "min_capacity", "max_capacity"):
        assert f"var.{service}.{field}" in conditions.split("floor(value)")[0], field


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("retry_base_seconds", ENV_RETRY_BASE_SECONDS),
        ("retry_max_seconds", ENV_RETRY_MAX_SECONDS),
        ("job_ledger_retention_days", ENV_JOB_LEDGER_RETENTION_DAYS),
    ],
)
def test_range_validations_are_exactly_what_the_worker_accepts(tf_config, variable: str, env: str) -> None:
    """Both ends of Terraform's range start a worker; one step outside either end stops it."""
    pattern = rf"var\.{variable}\s*>=\s*([\d.]+)\s*&&\s*var\.{variable}\s*<=\s*([\d.]+)"
    ranges = [re.search(pattern, c) for c in _conditions(tf_config, variable)]
    (match,) = [m for m in ranges if m]
    low, high = (float(v) for v in match.groups())
    base = dict.fromkeys(REQUIRED_ENV[BACKGROUND_JOB_SERVICE], "x")
    for accepted in (low, high):
        Settings.from_env(BACKGROUND_JOB_SERVICE, {**base, env: f"{accepted:g}"})
    for refused in (low - 1, high + 1):
        with pytest.raises(ConfigError):
            Settings.from_env(BACKGROUND_JOB_SERVICE, {**base, env: f"{refused:g}"})


#: ECR's repository name rule (CreateRepository, repositoryName pattern).
ECR_REPOSITORY_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_CAN_REGEX = re.compile(r'^\$\{can\(regex\("(?P<pattern>[^"]+)",\s*var\.project_name\)\)\}$')
_NOT_CONTAINS = re.compile(r'^\$\{!strcontains\(var\.project_name,\s*"(?P<text>[^"]+)"\)\}$')


def _project_name_accepted(tf_config, name: str) -> bool:
    """Evaluate project_name's validations; a condition of another form fails the test, not passes."""
    for condition in _conditions(tf_config, "project_name"):
        if match := _CAN_REGEX.match(condition):
            # Terraform's RE2 and Python agree on these character-class patterns.
            ok = re.search(match["pattern"], name) is not None
        elif match := _NOT_CONTAINS.match(condition):
            ok = match["text"] not in name
        else:
            raise AssertionError(f"unknown project_name validation: {condition}")
        if not ok:
            return False
    return True


@pytest.mark.parametrize("name", ["my--project", "a--b", "ab---c"])
def test_project_names_with_two_hyphens_in_a_row_are_refused_as_ecr_refuses_them(tf_config, name: str) -> None:
    """ECR repository names allow no two separators in a row: '--' must fail at plan, not at apply."""
    assert False is _project_name_accepted(tf_config, name)


@pytest.mark.parametrize("name", ["abc", "my-project", "message-driven-microservices", "a1-b2-c3", "p" * 42])
def test_every_accepted_project_name_makes_valid_ecr_repository_names(tf_config, name: str) -> None:
    """Names the validations accept become <project>-<env>-<service> repositories ECR accepts."""
    assert True is _project_name_accepted(tf_config, name)
    for service in ("main-job", "background-job"):
        assert ECR_REPOSITORY_NAME.fullmatch(f"{name}-prod-{service}"), name


#: Fargate's task cpu/memory pairs, in MiB (ECS Developer Guide, "Task CPU and memory").
FARGATE_MEMORY_BY_CPU = {
    256: [512, 1024, 2048],
    512: [1024, 2048, 3072, 4096],
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}
_RANGE = re.compile(r"^\$\{range\((\d+),\s*(\d+),\s*(\d+)\)\}$")


def _memory_list(value: object) -> list[int]:
    """A literal list, or Terraform's range(start, limit, step), which excludes the limit as Python's does."""
    if isinstance(value, list):
        return [int(v) for v in value]
    match = _RANGE.match(str(value))
    assert match, value
    start, limit, step = (int(v) for v in match.groups())
    return list(range(start, limit, step))


def test_the_fargate_table_in_tf_is_the_documented_one(tf_config) -> None:
    """The cpu -> memory table the validations read is exactly Fargate's (256/4096 is not in it)."""
    (table,) = tf_config.locals["fargate_memory_by_cpu"]
    assert FARGATE_MEMORY_BY_CPU == {int(cpu): _memory_list(memory) for cpu, memory in table.items()}
    assert 4096 not in FARGATE_MEMORY_BY_CPU[256]


@pytest.mark.parametrize("service", ["main_job", "background_job"])
def test_service_cpu_and_memory_must_be_a_fargate_pair(tf_config, service: str) -> None:
    """A cpu/memory pair Fargate refuses (256/4096) fails the plan: the validation looks the pair up."""
    expected = f"${{contains(try(local.fargate_memory_by_cpu[tostring(var.{service}.cpu)],[]),var.{service}.memory)}}"
    assert expected in [c.replace(", ", ",") for c in _conditions(tf_config, service)]
