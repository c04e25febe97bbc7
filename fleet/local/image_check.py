"""Run both built images as their ECS task definitions run them, against the embedded emulator.

``.ci/images-test`` builds the images and calls this. Each container gets exactly the environment
tf/ecs.tf passes plus what ECS injects (fleet/local/task_environment.py), a read-only root, the image's
``/tmp`` volume, uid 10001, ``--init``, no capabilities, 256 CPU units and 512 MiB, and the awslogs
driver pointed at the emulator. The check then asserts, and exits 1 naming the first failure:

- the image holds no test, bench, emulator, CLI, pip or setuptools code, and ``/tmp`` is off sys.path;
- AWS_REGION alone (as tf/ecs.tf sets it) starts a worker; no region at all exits 78 with config.invalid;
- both containers' health checks pass, and their stdout reaches their log groups through awslogs;
- triggers sent through the real queues run end to end: one ``succeeded`` ledger item and one log
  stream per job, malformed triggers quarantined in the trigger DLQ with their reason;
- ``docker stop`` (SIGTERM, then SIGKILL after the task's stopTimeout) with jobs running exits 0 within
  the grace period, and after a restart every job has succeeded: nothing is lost.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3

from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE, FleetNames
from fleet.local.emulator import start_emulator, stop_emulator
from fleet.local.fleet import EMULATOR_CREDENTIALS, HOST, REGION
from fleet.local.provision import QueueUrls, provision
from fleet.local.task_environment import ecs_injected, task_environment

T = TypeVar("T")
#: Not in an image: tests, bench, the operator's tools and emulator, installers (tests/images lists why).
FORBIDDEN_MODULES = (
    "tests", "bench", "fleet", "moto", "waitress", "watchtower", "pytest",
    "pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel",
)  # fmt: skip
GRACE_SECONDS = 25  # tf's shutdown_grace_seconds default; stopTimeout is this + 5
STOP_TIMEOUT_SECONDS = GRACE_SECONDS + 5
MALFORMED = ('{"trigger": 5}', "not json", '{"trigger":"x","jobType":"NOT A TYPE"}', "[]", '{"data":{}}')


class CheckFailed(AssertionError):
    """One asserted behaviour of the images did not hold."""


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Docker:
    """The docker client, pointed at the engine .ci/images-test started."""

    binary: str
    host: str

    def run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(  # noqa: S603 - our own docker client and arguments
            [self.binary, "-H", self.host, *args], capture_output=True, text=True, timeout=300, check=False
        )
        if check and result.returncode != 0:
            raise CheckFailed(f"docker {' '.join(args[:3])}... failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def state(self, container: str, field: str) -> str:
        return self.run("inspect", "-f", f"{{{{{field}}}}}", container)


@dataclass
class Deployment:
    """The emulator's resources, named as tf/ names them, and clients that talk to it directly."""

    names: FleetNames
    urls: QueueUrls
    endpoint: str
    clients: dict[str, Any]  # sqs, logs, dynamodb


def _deploy(port: int) -> Deployment:
    endpoint = f"http://{HOST}:{port}"
    session = boto3.session.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    clients: dict[str, Any] = {
        "sqs": session.client("sqs", endpoint_url=endpoint),
        "logs": session.client("logs", endpoint_url=endpoint),
        "dynamodb": session.client("dynamodb", endpoint_url=endpoint),
    }
    names = FleetNames.for_deployment("fleet", "images")
    urls = provision(
        sqs=clients["sqs"],
        logs=clients["logs"],
        names=names,
        visibility_timeout=60,
        max_receive_count=5,
        dynamodb=clients["dynamodb"],
    )
    return Deployment(names=names, urls=urls, endpoint=endpoint, clients=clients)


def _run_container(docker: Docker, image: str, service: str, deployment: Deployment) -> str:
    """``docker run`` with the task definition's settings; returns the container name."""
    env = {
        **task_environment(service, names=deployment.names, urls=deployment.urls, region=REGION),
        **ecs_injected(REGION, deployment.endpoint, EMULATOR_CREDENTIALS),
    }
    name = f"fleet-images-{service}-{uuid.uuid4().hex[:8]}"
    group = (
        deployment.names.main_job_log_group
        if service == MAIN_JOB_SERVICE
        else deployment.names.background_job_log_group
    )
    log_options = {
        "awslogs-region": REGION,
        "awslogs-group": group,
        "awslogs-stream": f"{service}/{service}/{name}",
        "awslogs-endpoint": deployment.endpoint,
        "mode": "non-blocking",
        "max-buffer-size": "25m",
    }
    args = ["run", "-d", "--name", name, "--network", "host", "--read-only", "--user", "10001:10001", "--init"]
    args += ["--cap-drop", "ALL", "--cpus", "0.25", "--memory", "512m", "--stop-timeout", str(STOP_TIMEOUT_SECONDS)]
    # The task definition's health check command, checked every 5 s instead of 30 to keep CI short.
    args += ["--health-interval", "5s", "--health-start-period", "30s", "--health-retries", "3"]
    args += ["--log-driver", "awslogs", *[f"--log-opt={key}={value}" for key, value in log_options.items()]]
    args += [f"--env={key}={value}" for key, value in sorted(env.items())]
    docker.run(*args, image)
    return name


def check_image_contents(docker: Docker, image: str) -> None:
    code = (
        "import importlib.util, json, sys; "
        "print(json.dumps({'found': [m for m in sys.argv[1:] if importlib.util.find_spec(m)], 'path': sys.path}))"
    )
    out = docker.run(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        image,
        "-c",
        code,
        *FORBIDDEN_MODULES,
    )
    report = json.loads(out)
    if report["found"]:
        raise CheckFailed(f"{image} holds {report['found']}")
    if "" in report["path"] or any(entry.startswith("/tmp") for entry in report["path"]):  # noqa: S108
        raise CheckFailed(f"{image}: the working directory /tmp is on sys.path: {report['path']}")


def check_region_from_aws_region_alone(docker: Docker, image: str, service: str, deployment: Deployment) -> None:
    """The task definition's AWS_REGION alone starts the worker; no region at all is exit 78, config.invalid.

    ECS injects AWS_DEFAULT_REGION on Fargate, but docker run, compose or Kubernetes given only the
    documented AWS_REGION used to crash with a NoRegionError traceback and exit 1.
    """
    env = {
        **task_environment(service, names=deployment.names, urls=deployment.urls, region=REGION),
        "AWS_ENDPOINT_URL": deployment.endpoint,
        **EMULATOR_CREDENTIALS,
    }
    base = ["run", "--network", "host", "--read-only", "--user", "10001:10001", "--cap-drop", "ALL"]
    no_region = [f"--env={key}={value}" for key, value in env.items() if key != "AWS_REGION"]
    result = subprocess.run(  # noqa: S603 - our own docker client and arguments
        [docker.binary, "-H", docker.host, *base, "--rm", *no_region, image],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 78 or '"config.invalid"' not in result.stderr:
        raise CheckFailed(f"{image} without a region exited {result.returncode}: {result.stderr[-500:]}")
    name = f"fleet-images-region-{uuid.uuid4().hex[:8]}"
    docker.run(*base, "-d", "--name", name, *[f"--env={key}={value}" for key, value in env.items()], image)
    try:
        wait_for(
            lambda: '"worker.started"' in docker.run("logs", name, check=False) or _exited(docker, name),
            timeout=60,
            what=f"{image} started with AWS_REGION alone",
        )
        if _exited(docker, name):
            raise CheckFailed(f"{image} with AWS_REGION alone exited: {docker.run('logs', name, check=False)[-500:]}")
    finally:
        docker.run("rm", "-f", name, check=False)


def _exited(docker: Docker, container: str) -> bool:
    return docker.state(container, ".State.Running") != "true"


def _healthy(docker: Docker, container: str) -> bool:
    if docker.state(container, ".State.Running") != "true":
        raise CheckFailed(f"{container} exited: {docker.run('logs', '--tail', '20', container, check=False)}")
    return docker.state(container, ".State.Health.Status") == "healthy"


def _send(deployment: Deployment, bodies: list[str]) -> None:
    sqs = deployment.clients["sqs"]
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        response = sqs.send_message_batch(QueueUrl=deployment.urls.trigger, Entries=entries)
        if response.get("Failed"):
            raise CheckFailed(f"SendMessageBatch refused {response['Failed']}")


def _ledger(deployment: Deployment) -> dict[str, str]:
    """jobId -> status of every ledger item."""
    dynamodb = deployment.clients["dynamodb"]
    items: dict[str, str] = {}
    kwargs: dict[str, Any] = {"TableName": deployment.names.job_ledger_table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        items.update({item["jobId"]["S"]: item["status"]["S"] for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _job_streams(deployment: Deployment) -> set[str]:
    paginator = deployment.clients["logs"].get_paginator("describe_log_streams")
    pages = paginator.paginate(
        logGroupName=deployment.names.background_job_log_group, logStreamNamePrefix="job-streams/"
    )
    return {stream["logStreamName"].rsplit("/", 1)[-1] for page in pages for stream in page["logStreams"]}


def check_awslogs_shipped(docker: Docker, containers: list[str], deployment: Deployment) -> None:
    """Each container's stdout reached its service log group through the awslogs driver."""
    for container in containers:
        service = MAIN_JOB_SERVICE if MAIN_JOB_SERVICE in container else BACKGROUND_JOB_SERVICE
        names = deployment.names
        group = names.main_job_log_group if service == MAIN_JOB_SERVICE else names.background_job_log_group
        stream = f"{service}/{service}/{container}"

        def shipped(group: str = group, stream: str = stream) -> bool:
            try:
                events = deployment.clients["logs"].get_log_events(
                    logGroupName=group, logStreamName=stream, limit=50, startFromHead=True
                )
            except deployment.clients["logs"].exceptions.ResourceNotFoundException:
                return False
            return any('"worker.started"' in event["message"] for event in events["events"])

        wait_for(shipped, timeout=60, what=f"{container}'s worker.started in {group}/{stream}")


def _depth(deployment: Deployment, url: str) -> int:
    attributes = deployment.clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def check_jobs_end_to_end(deployment: Deployment, count: int) -> None:
    trigger = {"trigger": "images-check", "jobType": "diagnostic-sleep", "data": {"seconds": 0}}
    _send(deployment, [json.dumps(trigger)] * count + list(MALFORMED))

    def all_succeeded() -> dict[str, str] | None:
        items = _ledger(deployment)
        return items if sum(status == "succeeded" for status in items.values()) >= count else None

    ledger = wait_for(all_succeeded, timeout=600, what=f"{count} succeeded ledger items")
    if len(ledger) != count or set(ledger.values()) != {"succeeded"}:
        raise CheckFailed(f"expected {count} succeeded jobs, ledger has {len(ledger)}: {set(ledger.values())}")
    wait_for(lambda: _job_streams(deployment) >= set(ledger), timeout=120, what="one log stream per job")
    wait_for(lambda: _depth(deployment, deployment.urls.trigger_dlq) >= len(MALFORMED), timeout=60, what="quarantine")
    messages = deployment.clients["sqs"].receive_message(
        QueueUrl=deployment.urls.trigger_dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    if not all("QuarantineReason" in message.get("MessageAttributes", {}) for message in messages):
        raise CheckFailed("a quarantined trigger has no QuarantineReason")


def check_sigterm_loses_nothing(docker: Docker, containers: list[str], deployment: Deployment) -> float:
    """Stop both containers with jobs running; every job must still succeed after a restart."""
    before = set(_ledger(deployment))
    trigger = {"trigger": "images-check-stop", "jobType": "diagnostic-sleep", "data": {"seconds": 5}}
    _send(deployment, [json.dumps(trigger)] * 20)
    wait_for(
        lambda: any(status == "running" for job, status in _ledger(deployment).items() if job not in before),
        timeout=120,
        what="a job running when SIGTERM is sent",
        interval=0.2,
    )
    started = time.monotonic()
    docker.run("stop", "-t", str(STOP_TIMEOUT_SECONDS), *containers)
    stopped_in = time.monotonic() - started
    for container in containers:
        code = docker.state(container, ".State.ExitCode")
        if code != "0":
            tail = docker.run("logs", "--tail", "20", container, check=False)
            raise CheckFailed(f"{container} exited {code} on SIGTERM: {tail}")
    if stopped_in > STOP_TIMEOUT_SECONDS:
        raise CheckFailed(f"docker stop took {stopped_in:.0f}s, past the {STOP_TIMEOUT_SECONDS}s stopTimeout")
    docker.run("start", *containers)

    def all_twenty_succeeded() -> bool:
        new = {job: status for job, status in _ledger(deployment).items() if job not in before}
        return len(new) == 20 and set(new.values()) == {"succeeded"}

    wait_for(all_twenty_succeeded, timeout=300, what="all 20 jobs succeeded after the restart")
    return stopped_in


def run_check(docker: Docker, images: dict[str, str], triggers: int, port: int) -> dict[str, Any]:
    for image in images.values():
        check_image_contents(docker, image)
    emulator = start_emulator(port)
    containers: list[str] = []
    try:
        deployment = _deploy(port)
        for service, image in images.items():
            check_region_from_aws_region_alone(docker, image, service, deployment)
        containers = [_run_container(docker, image, service, deployment) for service, image in images.items()]
        for container in containers:
            wait_for(lambda c=container: _healthy(docker, c), timeout=120, what=f"{container} healthy")  # type: ignore[misc]
        check_awslogs_shipped(docker, containers, deployment)
        started = time.monotonic()
        check_jobs_end_to_end(deployment, triggers)
        jobs_seconds = time.monotonic() - started
        stop_seconds = check_sigterm_loses_nothing(docker, containers, deployment)
        return {
            "triggers": triggers,
            "jobs_seconds": round(jobs_seconds, 1),
            "sigterm_stop_seconds": round(stop_seconds, 1),
        }
    finally:
        if containers:
            docker.run("rm", "-f", *containers, check=False)
        stop_emulator(emulator)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docker", default="docker")
    parser.add_argument("--host", required=True, help="the engine's socket, e.g. unix:///var/lib/x/docker.sock")
    parser.add_argument("--main-image", required=True)
    parser.add_argument("--background-image", required=True)
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--port", type=int, default=0, help="the emulator's port (default: a free one)")
    args = parser.parse_args(argv)
    images = {MAIN_JOB_SERVICE: args.main_image, BACKGROUND_JOB_SERVICE: args.background_image}
    port = args.port or _free_port()
    try:
        figures = run_check(Docker(args.docker, args.host), images, args.triggers, port)
    except CheckFailed as failure:
        print(json.dumps({"event": "images_check.failed", "error": str(failure)}), file=sys.stderr)
        return 1
    print(json.dumps({"event": "images_check.passed", **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
