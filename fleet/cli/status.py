"""``deploy.sh status``: queue and DLQ depths, age of the oldest message, and ECS task counts.

Queue depths come from SQS GetQueueAttributes. The age of the oldest message is CloudWatch's
``AWS/SQS ApproximateAgeOfOldestMessage`` (SQS has no attribute for it); it is shown as ``n/a`` when
CloudWatch has no recent datapoint. Running and desired task counts come from ECS DescribeServices.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_sqs import SQSClient

DEPTH_ATTRIBUTES: Final = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
#: SQS publishes its metrics every minute while a queue is active, every few minutes when idle.
AGE_LOOKBACK: Final = timedelta(minutes=15)
MAX_SERVICES_PER_CALL: Final = 10


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Depths of one queue; ``oldest_age_seconds`` is None when CloudWatch has no datapoint."""

    name: str
    visible: int
    not_visible: int
    delayed: int
    oldest_age_seconds: float | None


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """Task counts of one ECS service."""

    name: str
    running: int
    desired: int
    pending: int


def queue_name(queue_url: str) -> str:
    """The queue's name: the last path segment of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def oldest_message_age(cloudwatch: CloudWatchClient, name: str, *, now: datetime) -> float | None:
    """The latest ApproximateAgeOfOldestMessage datapoint in the lookback window, in seconds."""
    response = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": name}],
        StartTime=now - AGE_LOOKBACK,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )
    points = sorted(response.get("Datapoints", []), key=lambda point: point["Timestamp"])
    if not points:
        return None
    return points[-1].get("Maximum")


def queue_status(sqs: SQSClient, cloudwatch: CloudWatchClient, queue_url: str, *, now: datetime) -> QueueStatus:
    """Read one queue's depths and the age of its oldest message."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
    name = queue_name(queue_url)
    return QueueStatus(
        name=name,
        visible=int(attributes.get(DEPTH_ATTRIBUTES[0], "0")),
        not_visible=int(attributes.get(DEPTH_ATTRIBUTES[1], "0")),
        delayed=int(attributes.get(DEPTH_ATTRIBUTES[2], "0")),
        oldest_age_seconds=oldest_message_age(cloudwatch, name, now=now),
    )


def service_statuses(ecs: ECSClient, cluster: str, services: Sequence[str]) -> list[ServiceStatus]:
    """Running, desired and pending task counts, in the order the services were given."""
    found: dict[str, ServiceStatus] = {}
    for start in range(0, len(services), MAX_SERVICES_PER_CALL):
        response = ecs.describe_services(
            cluster=cluster, services=list(services[start : start + MAX_SERVICES_PER_CALL])
        )
        for service in response.get("services", []):
            status = ServiceStatus(
                name=service.get("serviceName", ""),
                running=service.get("runningCount", 0),
                desired=service.get("desiredCount", 0),
                pending=service.get("pendingCount", 0),
            )
            found[status.name] = status
            found[service.get("serviceArn", "")] = status
    missing = [name for name in services if name not in found]
    if missing:
        raise LookupError(f"ECS service(s) not found in cluster {cluster}: {', '.join(missing)}")
    return [found[name] for name in services]


def format_age(seconds: float | None) -> str:
    """Seconds as the report shows them: `n/a` when unknown, then seconds, minutes or hours."""
    if seconds is None:
        return "n/a"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def render(queues: Sequence[QueueStatus], services: Sequence[ServiceStatus]) -> str:
    """A plain-text report: one table of queues, one of services."""
    width = max([len("QUEUE"), *(len(queue.name) for queue in queues)])
    lines = [f"{'QUEUE':<{width}}  {'VISIBLE':>8}  {'IN FLIGHT':>9}  {'DELAYED':>8}  {'OLDEST':>7}"]
    for q in queues:
        age = format_age(q.oldest_age_seconds)
        lines.append(f"{q.name:<{width}}  {q.visible:>8}  {q.not_visible:>9}  {q.delayed:>8}  {age:>7}")
    width = max([len("SERVICE"), *(len(service.name) for service in services)])
    lines += ["", f"{'SERVICE':<{width}}  {'RUNNING':>7}  {'DESIRED':>7}  {'PENDING':>7}"]
    lines += [f"{s.name:<{width}}  {s.running:>7}  {s.desired:>7}  {s.pending:>7}" for s in services]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fleet.cli.status", description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True, help="AWS region of the deployment")
    parser.add_argument("--queue", action="append", default=[], metavar="URL", help="queue URL (repeatable)")
    parser.add_argument("--cluster", required=True, help="ECS cluster name")
    parser.add_argument("--service", action="append", default=[], metavar="NAME", help="ECS service (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Print the status of the given queues and services; exit 1 if a service does not exist."""
    args = _parser().parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    sqs = session.client("sqs")
    cloudwatch = session.client("cloudwatch")
    now = datetime.now(UTC)
    queues = [queue_status(sqs, cloudwatch, url, now=now) for url in args.queue]
    try:
        services = service_statuses(session.client("ecs"), args.cluster, args.service)
    except LookupError as error:
        sys.stderr.write(f"status: {error}\n")
        return 1
    sys.stdout.write(render(queues, services))
    return 0


if __name__ == "__main__":
    sys.exit(main())
