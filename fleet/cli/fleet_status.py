"""``fleet status``: the four queues in one table, DLQs with messages highlighted, and ECS task counts.

Queue depths and ECS counts are read by :mod:`fleet.cli.status` (shared with ``deploy.sh status``).
ECS is optional: against an emulator (``AWS_ENDPOINT_URL`` set) the workers are the local fleet's
processes, so ECS is not asked at all; on AWS a missing cluster is a note under the table, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from fleet.cli import status
from fleet.cli.clients import Clients
from fleet.cli.deployment import Deployment
from fleet.cli.queues import Queue, fleet_queues
from fleet.cli.render import table

SERVICES: Final = (MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE)
HIGHLIGHT: Final = "<< DLQ holds messages"


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """Everything ``fleet status`` shows; ``ecs_note`` says why services are missing, if they are."""

    queues: list[status.QueueStatus]
    dlqs: frozenset[str]
    services: list[status.ServiceStatus]
    ecs_note: str

    def needs_attention(self, queue: status.QueueStatus) -> bool:
        return queue.name in self.dlqs and (queue.visible + queue.not_visible + queue.delayed) > 0


def collect(clients: Clients, deployment: Deployment, *, now: datetime, emulator: bool = False) -> FleetStatus:
    """Read every queue's depths and, on AWS where ECS answers, the services' task counts."""
    queues: Sequence[Queue] = fleet_queues(clients.sqs, deployment.names)
    depths = [status.queue_status(clients.sqs, clients.cloudwatch, queue.url, now=now) for queue in queues]
    dlqs = frozenset(q.name for q in queues if q.is_dlq)
    if emulator:
        return FleetStatus(depths, dlqs, [], "")
    services: list[status.ServiceStatus] = []
    note = ""
    try:
        services = status.service_statuses(clients.ecs, deployment.cluster, SERVICES)
    except LookupError as error:
        note = str(error)
    except ClientError as error:
        details = error.response.get("Error", {})
        note = f"task counts not shown: cluster {deployment.cluster}: {details.get('Code')}: {details.get('Message')}"
    except BotoCoreError as error:
        note = f"task counts not shown: cluster {deployment.cluster}: {_first_line(error)}"
    return FleetStatus(depths, dlqs, services, note)


def render(report: FleetStatus) -> str:
    rows = []
    for queue in report.queues:
        rows.append(
            [
                queue.name,
                str(queue.visible),
                str(queue.not_visible),
                str(queue.delayed),
                status.format_age(queue.oldest_age_seconds),
                HIGHLIGHT if report.needs_attention(queue) else "",
            ]
        )
    text = table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST", ""], rows, right=frozenset({1, 2, 3, 4}))
    if report.services:
        service_rows = [[s.name, str(s.running), str(s.desired), str(s.pending)] for s in report.services]
        text += "\n" + table(["SERVICE", "RUNNING", "DESIRED", "PENDING"], service_rows, right=frozenset({1, 2, 3}))
    if report.ecs_note:
        text += f"\nECS: {report.ecs_note}\n"
    return text


def to_json(report: FleetStatus) -> str:
    document: dict[str, Any] = {
        "queues": [
            {
                **asdict(queue),
                "is_dlq": queue.name in report.dlqs,
                "needs_attention": report.needs_attention(queue),
            }
            for queue in report.queues
        ],
        "services": [asdict(service) for service in report.services],
        "ecs_note": report.ecs_note or None,
    }
    return json.dumps(document, indent=2) + "\n"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
