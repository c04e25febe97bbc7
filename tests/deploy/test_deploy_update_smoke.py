"""deploy.sh update proves the new revision starts and runs a job, even with the services at 0 tasks.

Run against the fake aws and terraform: one standalone task per new task definition, RUNNING and
healthy; one diagnostic trigger whose ledger item reads succeeded; the tasks stopped on every path; the
services and their autoscaling never touched.
"""

from __future__ import annotations

import json

import pytest

from .conftest import PREFIX, TF_OUTPUTS, Deploy
from .fake_tool import GIT_SHA, NETWORK, SMOKE_JOB_ID

CLUSTER = TF_OUTPUTS["ecs_cluster_name"]
SERVICES = [TF_OUTPUTS["main_job_service_name"], TF_OUTPUTS["background_job_service_name"]]
TASKS = [f"arn:aws:ecs:eu-west-1:123456789012:task/cluster/task-{service}" for service in SERVICES]
IMAGES = f"{PREFIX}-main-job:{GIT_SHA},{PREFIX}-background-job:{GIT_SHA}"
QUICK = {"FAKE_ECR_EXISTING": IMAGES, "FLEET_SMOKE_TIMEOUT_SECONDS": "0", "FLEET_SMOKE_POLL_SECONDS": "0"}
#: What would take the services away from autoscaling; the smoke test must call none of them.
AUTOSCALING_OVERRIDES = (["ecs", "update-service"], ["application-autoscaling", "register-scalable-target"])


def _update(deploy: Deploy, **env: str):
    return deploy.run("update", "--yes", env={**QUICK, **env})


def _aws(deploy: Deploy, *command: str) -> list[list[str]]:
    return [call[1:] for call in deploy.calls() if call[:1] == ["aws"] and call[1 : 1 + len(command)] == list(command)]


def _stopped(deploy: Deploy) -> list[str]:
    return [call[call.index("--task") + 1] for call in _aws(deploy, "ecs", "stop-task")]


def test_update_runs_one_task_of_each_new_revision_and_a_job_end_to_end(deploy: Deploy):
    """Both new task definitions run healthy, a diagnostic job succeeds, then both tasks are stopped."""
    result = _update(deploy)

    assert 0 == result.returncode, result.stderr
    runs = _aws(deploy, "ecs", "run-task")
    assert [f"arn:aws:ecs:eu-west-1:123456789012:task-definition/{service}:7" for service in SERVICES] == [
        run[run.index("--task-definition") + 1] for run in runs
    ]
    for run in runs:
        assert NETWORK == json.loads(run[run.index("--network-configuration") + 1])
        assert "FARGATE" == run[run.index("--launch-type") + 1]
    (send,) = _aws(deploy, "sqs", "send-message")
    assert TF_OUTPUTS["trigger_queue_url"] == send[send.index("--queue-url") + 1]
    body = json.loads(send[send.index("--message-body") + 1])
    assert "diagnostic-sleep" == body["jobType"]
    assert body["correlationId"].startswith(f"deploy-smoke-{GIT_SHA}-")
    (query,) = _aws(deploy, "dynamodb", "query")
    assert (f"{PREFIX}-jobs", "by-day") == (
        query[query.index("--table-name") + 1],
        query[query.index("--index-name") + 1],
    )
    (read,) = _aws(deploy, "dynamodb", "batch-get-item")
    keys = json.loads(read[read.index("--request-items") + 1])[f"{PREFIX}-jobs"]["Keys"]
    assert [{"jobId": {"S": SMOKE_JOB_ID}}] == keys
    assert f"correlationId.S=='{body['correlationId']}'" in read[read.index("--query") + 1]
    assert "status.S=='succeeded'" in read[read.index("--query") + 1]
    assert TASKS == _stopped(deploy)
    assert "ran a job end to end" in result.stderr


def test_the_smoke_test_never_takes_the_services_from_autoscaling(deploy: Deploy):
    """Standalone tasks prove the revision: the services' desired counts and scalable targets stay autoscaling's."""
    _update(deploy)

    for command in AUTOSCALING_OVERRIDES:
        assert [] == _aws(deploy, *command)
    assert [["--started-by", "deploy-smoke"]] * 2 == [
        run[run.index("--started-by") : run.index("--started-by") + 2] for run in _aws(deploy, "ecs", "run-task")
    ]


def test_a_task_that_stops_fails_the_update_with_its_stopped_reason_and_last_log_lines(deploy: Deploy):
    """A bad image or a worker that exits at start: the stopped reason and its log lines, exit 1."""
    states = json.dumps({f"task-{SERVICES[1]}": "STOPPED\tUNKNOWN"})

    result = _update(deploy, FAKE_TASK_STATES=states)

    assert 1 == result.returncode
    assert f"the new {SERVICES[1]} task stopped" in result.stderr
    assert "Essential container in task exited" in result.stderr
    assert f"fake last log line of {SERVICES[1]}/{SERVICES[1]}/task-{SERVICES[1]}" in result.stderr
    assert [] == _aws(deploy, "sqs", "send-message")
    assert TASKS == _stopped(deploy)


def test_a_health_check_that_never_passes_fails_the_update(deploy: Deploy):
    """RUNNING but never HEALTHY by the deadline: the task is reported and stopped, exit 1."""
    states = json.dumps({f"task-{SERVICES[0]}": "RUNNING\tUNHEALTHY"})

    result = _update(deploy, FAKE_TASK_STATES=states)

    assert 1 == result.returncode
    assert f"the new {SERVICES[0]} task did not become RUNNING and healthy" in result.stderr
    assert f"fake last log line of {SERVICES[0]}/{SERVICES[0]}/task-{SERVICES[0]}" in result.stderr
    assert TASKS == _stopped(deploy)


def test_a_job_that_never_succeeds_fails_the_update_with_both_tasks_logs(deploy: Deploy):
    """Healthy tasks that cannot run a job (a missing permission, a wrong variable): exit 1 with their logs."""
    result = _update(deploy, FAKE_JOB_SUCCEEDED="0")

    assert 1 == result.returncode
    assert "did not succeed within 0s" in result.stderr
    assert "does not run a job end to end" in result.stderr
    for service in SERVICES:
        # awslogs streams are <prefix>/<container>/<task id>; both are the service's name (tf/ecs.tf)
        assert f"fake last log line of {service}/{service}/task-{service}" in result.stderr
    assert TASKS == _stopped(deploy)


@pytest.mark.parametrize("failing", [0, 1])
def test_a_revision_ecs_cannot_start_fails_the_update_and_stops_what_did_start(deploy: Deploy, failing: int):
    """run-task starting nothing (no capacity, a bad role) fails at once; a task already started is stopped."""
    result = _update(deploy, FAKE_RUN_TASK_FAILS=SERVICES[failing])

    assert 1 == result.returncode
    assert f"the new {SERVICES[failing]} revision could not be started" in result.stderr
    assert TASKS[:failing] == _stopped(deploy)


def test_a_trigger_that_cannot_be_sent_fails_the_update_without_waiting(deploy: Deploy):
    """SendMessage refused (a KMS or queue policy): said at once, the ledger is never polled, tasks stopped."""
    result = _update(deploy, FAKE_FAIL="aws sqs send-message")

    assert 1 == result.returncode
    assert "could not send the diagnostic trigger" in result.stderr
    assert [] == _aws(deploy, "dynamodb", "query")
    assert TASKS == _stopped(deploy)


def test_fleet_update_smoke_0_skips_the_smoke_test(deploy: Deploy):
    """An operator can skip the proof (for example in an incident): no task is started, and it is said."""
    result = _update(deploy, FLEET_UPDATE_SMOKE="0")

    assert 0 == result.returncode, result.stderr
    assert [] == _aws(deploy, "ecs", "run-task")
    assert "smoke test skipped" in result.stderr
