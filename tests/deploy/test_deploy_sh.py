"""deploy.sh's cloud subcommands, run against fake aws, docker, terraform and git."""

from __future__ import annotations

import json

import pytest

from .conftest import ACCOUNT_REGISTRY, PREFIX, TF_OUTPUTS, Deploy
from .fake_tool import GIT_SHA, IMAGES

SHA = GIT_SHA
TF = ["terraform", "-chdir=tf"]
MAIN_REPO = f"{PREFIX}-main-job"
BACKGROUND_REPO = f"{PREFIX}-background-job"
MAIN_URL = f"{ACCOUNT_REGISTRY}/{MAIN_REPO}"
BACKGROUND_URL = f"{ACCOUNT_REGISTRY}/{BACKGROUND_REPO}"
CLUSTER = TF_OUTPUTS["ecs_cluster_name"]
SERVICES = [TF_OUTPUTS["main_job_service_name"], TF_OUTPUTS["background_job_service_name"]]


OUTPUTS = [*TF, "output", "-json"]


def output(_name: str) -> list[str]:
    """The call that reads output ``_name``: every output as JSON, the name picked out by deploy.sh."""
    return OUTPUTS


def describe_image(repository: str, region: str = "eu-west-1") -> list[str]:
    return [
        "aws", "ecr", "describe-images", "--region", region, "--repository-name", repository,
        "--image-ids", f"imageTag={SHA}",
    ]  # fmt: skip


def docker_build(dockerfile: str, url: str, *tags: str) -> list[str]:
    tag_args = [arg for tag in tags for arg in ("-t", f"{url}:{tag}")]
    return [
        "docker", "build", "--platform", "linux/amd64", "--pull",
        "--label", f"org.opencontainers.image.revision={SHA}", "-f", dockerfile, *tag_args, ".",
    ]  # fmt: skip


LOGIN = [
    ["aws", "ecr", "get-login-password", "--region", "eu-west-1"],
    ["docker", "login", "--username", "AWS", "--password-stdin", ACCOUNT_REGISTRY],
]
DOCKER_INFO = ["docker", "info"]
STS = ["aws", "sts", "get-caller-identity", "--region", "eu-west-1"]
BUILD_PREAMBLE = [
    ["git", "rev-parse", "--short", "HEAD"],
    ["git", "status", "--porcelain", "--untracked-files=no"],
    output("main_job_ecr_repository_url"),
    DOCKER_INFO,
    STS,
    output("main_job_ecr_repository_url"),
    output("background_job_ecr_repository_url"),
]


# --- usage ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("deploy-everything",), ("--bogus", "build")])
def test_missing_or_unknown_command_prints_usage_to_stderr_and_exits_2(deploy: Deploy, args):
    """No command, an unknown command or an unknown option prints usage on stderr and exits 2."""
    result = deploy.run(*args)

    assert result.returncode == 2
    assert "Usage: ./deploy.sh" in result.stderr
    assert result.stdout == ""
    assert deploy.calls() == []


def test_help_documents_every_command_and_the_region_profile_environment_settings(deploy: Deploy):
    """--help goes to stdout, exits 0 and documents commands, flags and their environment variables."""
    result = deploy.run("--help")

    assert result.returncode == 0
    for word in (
        "build [TAG]", "update", "destroy", "info", "status", "local", "test", "init [BACKEND_CONFIG]",
        "--region", "--profile", "--env", "AWS_REGION", "AWS_PROFILE", "FLEET_ENVIRONMENT",
    ):  # fmt: skip
        assert word in result.stdout


# --- build ------------------------------------------------------------------------------------------


def test_build_logs_in_builds_both_images_for_amd64_then_pushes_sha_and_extra_tags(deploy: Deploy):
    """build TAG logs in to ECR, builds both images tagged SHA and TAG, and only then pushes them."""
    result = deploy.run("build", "v1.2.0")

    assert result.returncode == 0, result.stderr
    assert deploy.calls() == [
        *BUILD_PREAMBLE,
        describe_image(MAIN_REPO),
        describe_image(BACKGROUND_REPO),
        *LOGIN,
        docker_build("Dockerfile.main", MAIN_URL, SHA, "v1.2.0"),
        docker_build("Dockerfile.background", BACKGROUND_URL, SHA, "v1.2.0"),
        ["docker", "push", f"{MAIN_URL}:{SHA}"],
        ["docker", "push", f"{MAIN_URL}:v1.2.0"],
        ["docker", "push", f"{BACKGROUND_URL}:{SHA}"],
        ["docker", "push", f"{BACKGROUND_URL}:v1.2.0"],
    ]


def test_build_with_fleet_build_pull_0_uses_the_base_image_already_loaded(deploy: Deploy):
    """No Docker Hub (a mirror, the stand-in base): FLEET_BUILD_PULL=0 drops --pull and changes nothing else."""
    result = deploy.run("build", env={"FLEET_BUILD_PULL": "0"})

    builds = [call for call in deploy.calls() if call[:2] == ["docker", "build"]]
    assert result.returncode == 0, result.stderr
    assert [
        [arg for arg in docker_build("Dockerfile.main", MAIN_URL, SHA) if arg != "--pull"],
        [arg for arg in docker_build("Dockerfile.background", BACKGROUND_URL, SHA) if arg != "--pull"],
    ] == builds


def test_build_reads_the_region_from_terraform_when_none_is_set(deploy: Deploy):
    """Without --region or AWS_REGION, AWS calls use the deployment's aws_region output."""
    result = deploy.run("build", env={"AWS_REGION": ""})

    assert result.returncode == 0, result.stderr
    calls = deploy.calls()
    assert ["aws", "ecr", "get-login-password", "--region", "eu-west-1"] in calls


def test_build_on_a_fresh_state_creates_the_ecr_repositories_first(deploy: Deploy):
    """When Terraform has no ECR outputs yet, build applies just the two repositories, then goes on."""
    result = deploy.run("--env", "staging", "build", env={"FAKE_TF_FRESH": "1"})

    assert result.returncode == 0, result.stderr
    calls = deploy.calls()
    assert calls[2:6] == [
        OUTPUTS,
        DOCKER_INFO,
        STS,
        [
            *TF, "apply", "-input=false", "-auto-approve", "-var=aws_region=eu-west-1",
            "-var=environment=staging", "-target=aws_ecr_repository.this",
            "-target=aws_ecr_lifecycle_policy.this",
        ],
    ]  # fmt: skip
    assert calls[-1] == ["docker", "push", f"{BACKGROUND_URL}:{SHA}"]


def test_build_skips_an_image_already_pushed_for_this_commit(deploy: Deploy):
    """ECR tags are immutable, so an image already in ECR for this SHA is not rebuilt or pushed."""
    result = deploy.run("build", env={"FAKE_ECR_EXISTING": f"{MAIN_REPO}:{SHA}"})

    assert result.returncode == 0, result.stderr
    assert deploy.calls()[len(BUILD_PREAMBLE) + 2 :] == [
        *LOGIN,
        docker_build("Dockerfile.background", BACKGROUND_URL, SHA),
        ["docker", "push", f"{BACKGROUND_URL}:{SHA}"],
    ]


def test_build_warns_that_uncommitted_changes_go_into_the_sha_tag(deploy: Deploy):
    """A dirty work tree is built, with a warning that the SHA tag does not describe it."""
    result = deploy.run("build", env={"FAKE_GIT_STATUS": " M common/settings.py\n"})

    assert result.returncode == 0, result.stderr
    assert "uncommitted changes" in result.stderr


def test_a_failing_docker_build_stops_before_any_push(deploy: Deploy):
    """If building the first image fails, nothing else is built and nothing is pushed."""
    result = deploy.run("build", env={"FAKE_FAIL": "docker build"})

    assert result.returncode != 0
    tools = [call[:2] for call in deploy.calls()]
    assert ["docker", "push"] not in tools
    assert tools.count(["docker", "build"]) == 1


def test_a_failing_ecr_login_stops_before_building(deploy: Deploy):
    """If the ECR password cannot be fetched, the pipeline fails and docker never builds."""
    result = deploy.run("build", env={"FAKE_FAIL": "aws ecr get-login-password"})

    assert result.returncode != 0
    assert ["docker", "build"] not in [call[:2] for call in deploy.calls()]


def test_build_rejects_a_tag_docker_would_refuse(deploy: Deploy):
    """An invalid extra tag is refused before any tool runs."""
    result = deploy.run("build", "not a/tag")

    assert result.returncode != 0
    assert "invalid image tag" in result.stderr
    assert deploy.calls() == []


@pytest.mark.parametrize(
    ("failing", "reason"),
    [
        ("docker info", "the Docker daemon is not reachable ('docker info' failed): start Docker"),
        ("aws sts", "AWS credentials do not work in eu-west-1 ('aws sts get-caller-identity' failed)"),
    ],
)
def test_build_checks_the_docker_daemon_and_aws_credentials_before_creating_anything(deploy: Deploy, failing, reason):
    """A stopped daemon or unusable credentials: one line, and no terraform apply, login, build or push."""
    result = deploy.run("build", env={"FAKE_FAIL": failing, "FAKE_TF_FRESH": "1"})

    assert 1 == result.returncode
    assert reason in result.stderr
    assert [] == [call for call in deploy.calls() if call[1:2] in (["-chdir=tf"],) and "apply" in call]
    assert [] == [call for call in deploy.calls() if call[:2] in (["docker", "build"], ["docker", "login"])]


NOT_INITIALISED = (
    "deploy.sh: error: no Terraform state is set up here: "
    "run './deploy.sh init backends/<env>.s3.tfbackend' first (README: Deploy to AWS)\n"
)


@pytest.mark.parametrize("args", [("build",), ("update", "--yes"), ("destroy", "--yes"), ("info",), ("status",)])
def test_without_init_each_command_says_to_run_init_in_one_line(deploy: Deploy, args):
    """No `./deploy.sh init` yet: one line naming it instead of Terraform's box, and nothing else runs."""
    result = deploy.run(*args, env={"FAKE_TF_UNINITIALISED": "1", "AWS_REGION": ""})

    assert (3, "", NOT_INITIALISED) == (result.returncode, result.stdout, result.stderr)
    assert [] == [call for call in deploy.calls() if call[0] in ("aws", "docker")]


# --- update -----------------------------------------------------------------------------------------


def test_update_applies_the_sha_tag_to_both_services_then_waits_for_them(deploy: Deploy):
    """update --yes checks the images exist, applies with both tags at the SHA, waits and reports."""
    images = f"{MAIN_REPO}:{SHA},{BACKGROUND_REPO}:{SHA}"
    result = deploy.run("--region", "eu-west-1", "--env", "prod", "update", "--yes", env={"FAKE_ECR_EXISTING": images})

    assert result.returncode == 0, result.stderr
    # Then the smoke test (tests/deploy/test_deploy_update_smoke.py).
    expected = [
        ["git", "rev-parse", "--short", "HEAD"],
        output("main_job_ecr_repository_url"),
        output("background_job_ecr_repository_url"),
        describe_image(MAIN_REPO),
        describe_image(BACKGROUND_REPO),
        [
            *TF, "apply", "-input=false", "-auto-approve", "-var=aws_region=eu-west-1",
            "-var=environment=prod", f"-var=main_job_image_tag={SHA}",
            f"-var=background_job_image_tag={SHA}",
        ],
        output("ecs_cluster_name"),
        output("main_job_service_name"),
        output("background_job_service_name"),
        ["aws", "ecs", "wait", "services-stable", "--region", "eu-west-1", "--cluster", CLUSTER,
         "--services", *SERVICES],
        ["aws", "ecs", "describe-services", "--region", "eu-west-1", "--cluster", CLUSTER,
         "--services", *SERVICES, "--query",
         "services[].{service:serviceName,running:runningCount,desired:desiredCount,"
         "taskDefinition:taskDefinition}", "--output", "table"],
    ]  # fmt: skip
    assert expected == deploy.calls()[: len(expected)]
    assert "fake describe-services table" in result.stdout
    assert "stable" in result.stderr


def test_update_refuses_when_this_commits_image_was_never_built(deploy: Deploy):
    """update stops before terraform apply if ECR lacks the image for the current SHA."""
    result = deploy.run("update", "--yes", env={"FAKE_ECR_EXISTING": f"{MAIN_REPO}:{SHA}"})

    assert result.returncode != 0
    assert f"{BACKGROUND_URL}:{SHA}" in result.stderr
    assert "./deploy.sh build" in result.stderr
    assert [*TF, "apply"] not in [call[:3] for call in deploy.calls()]


def test_update_without_yes_and_without_a_terminal_refuses(deploy: Deploy):
    """With nobody to approve the plan, update needs --yes and calls nothing."""
    result = deploy.run("update")

    assert result.returncode != 0
    assert "--yes" in result.stderr
    assert deploy.calls() == []


def test_update_fails_clearly_when_the_services_do_not_stabilise(deploy: Deploy):
    """A failed services-stable wait prints the services' state and exits non-zero."""
    images = f"{MAIN_REPO}:{SHA},{BACKGROUND_REPO}:{SHA}"
    result = deploy.run("update", "--yes", env={"FAKE_ECR_EXISTING": images, "FAKE_FAIL": "aws ecs wait"})

    assert result.returncode == 1
    assert "did not become stable" in result.stderr
    assert deploy.calls()[-1][:3] == ["aws", "ecs", "describe-services"]


# --- destroy ----------------------------------------------------------------------------------------


def test_destroy_empties_both_repositories_then_destroys_the_stack(deploy: Deploy):
    """destroy --yes deletes every image from both ECR repositories, then runs terraform destroy."""
    result = deploy.run("destroy", "--yes")

    assert result.returncode == 0, result.stderr

    def list_images(repository: str) -> list[str]:
        return [
            "aws", "ecr", "list-images", "--region", "eu-west-1", "--repository-name", repository,
            "--max-items", "100", "--query", "imageIds", "--output", "json",
        ]  # fmt: skip

    image_ids = json.dumps(IMAGES, indent=4)

    def delete_images(repository: str) -> list[str]:
        return [
            "aws", "ecr", "batch-delete-image", "--region", "eu-west-1", "--repository-name", repository,
            "--image-ids", image_ids,
        ]  # fmt: skip

    assert deploy.calls() == [
        output("main_job_ecr_repository_url"),
        output("background_job_ecr_repository_url"),
        list_images(MAIN_REPO),
        delete_images(MAIN_REPO),
        list_images(MAIN_REPO),
        list_images(BACKGROUND_REPO),
        delete_images(BACKGROUND_REPO),
        list_images(BACKGROUND_REPO),
        [*TF, "destroy", "-input=false", "-auto-approve", "-var=aws_region=eu-west-1"],
    ]


def test_destroy_without_yes_and_without_a_terminal_refuses(deploy: Deploy):
    """With no terminal to confirm on, destroy without --yes deletes nothing and calls nothing."""
    result = deploy.run("destroy")

    assert result.returncode != 0
    assert "--yes" in result.stderr
    assert deploy.calls() == []


def test_destroy_stops_before_terraform_if_emptying_a_repository_fails(deploy: Deploy):
    """A failed image deletion stops destroy; terraform destroy never runs."""
    result = deploy.run("destroy", "--yes", env={"FAKE_FAIL": "aws ecr batch-delete-image"})

    assert result.returncode != 0
    assert [*TF, "destroy"] not in [call[:3] for call in deploy.calls()]


@pytest.mark.parametrize("args", [("destroy", "--force"), ("update", "--yes", "now"), ("build", "a", "b")])
def test_unexpected_arguments_to_a_command_exit_2(deploy: Deploy, args):
    """A command given arguments it does not take prints its usage and exits 2 without side effects."""
    result = deploy.run(*args)

    assert result.returncode == 2
    assert "usage: ./deploy.sh" in result.stderr
    assert deploy.calls() == []


# --- info and init ----------------------------------------------------------------------------------


def test_info_prints_queues_logs_services_and_exact_aws_commands(deploy: Deploy):
    """info shows every queue URL, log group and service, and paste-ready send and tail commands."""
    result = deploy.run("--profile", "ops", "info", env={"AWS_REGION": ""})

    assert result.returncode == 0, result.stderr
    for name in ("trigger_queue_url", "trigger_dlq_url", "background_queue_url", "background_dlq_url"):
        assert TF_OUTPUTS[name] in result.stdout
    for name in ("main_job_service_name", "background_job_service_name", "ecs_cluster_name"):
        assert TF_OUTPUTS[name] in result.stdout
    lines = [line.strip() for line in result.stdout.splitlines()]
    cli = "aws --region eu-west-1 --profile ops"
    send = [line for line in lines if line.startswith(f"{cli} sqs send-message")]
    assert send[0].startswith(f"{cli} sqs send-message --queue-url {TF_OUTPUTS['trigger_queue_url']} --message-body '")
    body = json.loads(send[0].split("--message-body ", 1)[1].strip("'"))
    assert body["trigger"]
    assert f"{cli} logs tail {TF_OUTPUTS['main_job_log_group_name']} --follow" in lines
    assert f"{cli} logs tail {TF_OUTPUTS['background_job_log_group_name']} --follow" in lines
    assert deploy.calls()[0] == OUTPUTS
    assert "Region:            eu-west-1\n" in result.stdout


NOT_AVAILABLE = "terraform output '{}' is not available: run './deploy.sh init', then build and update"


@pytest.mark.parametrize(
    ("args", "first_output"),
    [
        (("info",), "aws_region"),
        (("status",), "aws_region"),
        (("update", "--yes"), "main_job_ecr_repository_url"),
        (("destroy", "--yes"), "aws_region"),
    ],
)
def test_a_state_without_outputs_fails_with_the_documented_line(deploy: Deploy, args, first_output):
    """With no outputs (terraform exits 0 with a warning box), each command fails with one line, calling no AWS."""
    result = deploy.run(*args, env={"FAKE_TF_FRESH": "1", "AWS_REGION": ""})

    assert 1 == result.returncode
    assert "" == result.stdout
    assert 1 == len(result.stderr.splitlines())
    assert NOT_AVAILABLE.format(first_output) in result.stderr
    assert [] == [call for call in deploy.calls() if call[0] in ("aws", "docker", "python")]


def test_init_passes_the_backend_config_as_an_absolute_path(deploy: Deploy, tmp_path):
    """init FILE runs terraform init with -backend-config pointing at the caller's file."""
    config = tmp_path / "prod.s3.tfbackend"
    config.write_text('bucket = "state"\n')

    result = deploy.run("init", str(config))

    assert result.returncode == 0, result.stderr
    assert deploy.calls() == [[*TF, "init", "-input=false", f"-backend-config={config}"]]


def test_init_without_a_file_refuses_and_names_the_backend_file(deploy: Deploy):
    """The S3 backend is partial: init alone would prompt, so it stops and says what to pass."""
    result = deploy.run("init")

    assert result.returncode == 2
    assert "backend config file" in result.stderr
    assert "backend_override.tf" in result.stderr
    assert deploy.calls() == []


def test_init_without_a_file_uses_a_local_state_override(deploy: Deploy):
    """With tf/backend_override.tf (a local-state trial) init alone runs a plain terraform init."""
    override = deploy.script.parent / "tf" / "backend_override.tf"
    override.write_text('terraform {\n  backend "local" {}\n}\n')
    try:
        result = deploy.run("init")
    finally:
        override.unlink()

    assert result.returncode == 0, result.stderr
    assert deploy.calls() == [[*TF, "init", "-input=false"]]


def test_init_with_a_missing_backend_config_fails_before_terraform(deploy: Deploy):
    """A backend config path that does not exist is reported by name; terraform never runs."""
    result = deploy.run("init", "nowhere.tfbackend")

    assert result.returncode != 0
    assert "nowhere.tfbackend" in result.stderr
    assert deploy.calls() == []


# --- missing tools ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "tool"),
    [
        (("build",), "aws"),
        (("build",), "docker"),
        (("build",), "terraform"),
        (("build",), "git"),
        (("update", "--yes"), "git"),
        (("update", "--yes"), "aws"),
        (("destroy", "--yes"), "terraform"),
        (("info",), "terraform"),
        (("status",), "terraform"),
        (("init",), "terraform"),
    ],
)
def test_a_missing_tool_is_named_and_nothing_runs(deploy: Deploy, command, tool):
    """Each cloud command checks its tools first and names the one missing from PATH."""
    result = deploy.without(tool).run(*command)

    assert result.returncode != 0
    assert tool in result.stderr
    assert "not found" in result.stderr
    assert deploy.calls() == []
