"""``fleet top``: a live view of the fleet, refreshed every 1-2 s until Ctrl-C; one snapshot off a terminal.

What one refresh asks AWS, and why it stays under 10 requests whatever the load:

- the four queues' depths: one GetQueueAttributes each (4). Their URLs are resolved once, at start;
- the age of each queue's oldest message: one GetMetricData for all four, at most once a minute (SQS
  publishes ApproximateAgeOfOldestMessage once a minute, so asking more often only costs);
- recent jobs from the ledger, never a Scan: one Query of today's ``by-day`` partition, newest first, for
  at most :data:`NEWEST_LIMIT` job IDs queued in the last five minutes (keys only: a page, whatever the
  throughput; a second Query for yesterday's partition only in the first five minutes after midnight
  UTC), then one BatchGetItem for those of them not yet known to be final (at most 100 keys, one
  request). So the per-minute counts cover the newest 100 jobs queued in the window; a busier fleet
  is shown as a sample, and says so (1 + at most 1);
- running and desired tasks: one ECS DescribeServices for both services (1). Without a cluster (the
  local fleet) the supervisor's own report is read instead (no request), and ECS is asked again only
  once a minute.

So a refresh makes at most 7 requests (6 when every listed job is final), one more across midnight and
one more on the minute (``fleet top`` prints the count it made).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console, Group
from rich.live import Live

from common.ledger.schema import JobStatus
from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from fleet.cli import status
from fleet.cli.clients import Clients
from fleet.cli.deployment import Deployment
from fleet.cli.ledger import Ledger, LedgerJob, LedgerUnavailable
from fleet.cli.queues import Queue, fleet_queues
from fleet.cli.top_view import TopView, render
from fleet.local import task_counts

SERVICES: Final = (MAIN_JOB_SERVICE, BACKGROUND_JOB_SERVICE)
#: Jobs per minute are counted over this many minutes; items older than the window are forgotten.
WINDOW_MINUTES: Final = 5
#: Job IDs a refresh lists (one Query page) and reads (one BatchGetItem: its limit is 100 keys).
NEWEST_LIMIT: Final = 100
#: States a job leaves only by a redrive: a known item in one of them is not read again.
SETTLED: Final = frozenset({JobStatus.SUCCEEDED.value, JobStatus.DEAD.value})
#: Outcomes counted per minute.
OUTCOMES: Final = (JobStatus.SUCCEEDED, JobStatus.RETRYING, JobStatus.DEAD, JobStatus.CANCELLED)
SLOW_REFRESH_SECONDS: Final = 60.0
NEWEST_JOBS: Final = 12
#: Off a terminal there is no width to fit: wide enough for the longest queue names and the highlight.
SNAPSHOT_WIDTH: Final = 140


class RequestCount:
    """Counts the requests the clients make (botocore's before-call event): each refresh shows its own."""

    def __init__(self, clients: Clients) -> None:
        self.total = 0
        for client in (clients.sqs, clients.cloudwatch, clients.dynamodb, clients.ecs):
            client.meta.events.register("before-call.*.*", self._count)

    def _count(self, **_: Any) -> None:  # noqa: ANN401 - botocore's event keywords
        self.total += 1


@dataclass
class TopSource:
    """Reads what ``fleet top`` shows; keeps what it read, so each refresh asks only for what changed."""

    clients: Clients
    deployment: Deployment
    ledger: Ledger
    clock: Callable[[], float] = time.monotonic
    _queues: list[Queue] = field(default_factory=list)
    _ages: dict[str, float | None] = field(default_factory=dict)
    _ages_at: float | None = None
    _jobs: dict[str, LedgerJob] = field(default_factory=dict)
    _sampled: bool = False
    _ecs_retry_at: float | None = None
    _ledger_note: str = ""

    def refresh(self, now: datetime) -> TopView:
        """One refresh: queue depths, ages (once a minute), the newest jobs, the services."""
        if not self._queues:
            self._queues = fleet_queues(self.clients.sqs, self.deployment.names)  # once: URLs do not change
        depths = [self._depth(queue) for queue in self._queues]
        self._refresh_ages(now)
        self._refresh_jobs(now)
        services, note = self._services()
        sample = f"jobs: the newest {NEWEST_LIMIT} queued in the last {WINDOW_MINUTES} minutes" if self._sampled else ""
        return TopView(
            taken_at=now,
            queues=[
                status.QueueStatus(d.name, d.visible, d.not_visible, d.delayed, self._ages.get(d.name)) for d in depths
            ],
            dlqs=frozenset(queue.name for queue in self._queues if queue.is_dlq),
            per_minute=self._per_minute(now),
            newest=sorted(self._jobs.values(), key=lambda job: job.updated_at, reverse=True)[:NEWEST_JOBS],
            services=services,
            notes=[text for text in (self._ledger_note, sample, note) if text],
        )

    def _depth(self, queue: Queue) -> status.QueueStatus:
        attributes = self.clients.sqs.get_queue_attributes(
            QueueUrl=queue.url, AttributeNames=list(status.DEPTH_ATTRIBUTES)
        )["Attributes"]
        visible, in_flight, delayed = (int(attributes.get(name, "0")) for name in status.DEPTH_ATTRIBUTES)
        return status.QueueStatus(queue.name, visible, in_flight, delayed, None)

    def _refresh_ages(self, now: datetime) -> None:
        """One GetMetricData for every queue's oldest-message age, at most once a minute."""
        if self._ages_at is not None and self.clock() - self._ages_at < SLOW_REFRESH_SECONDS:
            return
        self._ages_at = self.clock()
        queries = [
            {
                "Id": f"q{index}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": queue.name}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
            for index, queue in enumerate(self._queues)
        ]
        try:
            response = self.clients.cloudwatch.get_metric_data(
                MetricDataQueries=queries,  # type: ignore[arg-type]
                StartTime=now - status.AGE_LOOKBACK,
                EndTime=now,
                ScanBy="TimestampDescending",
            )
        except (BotoCoreError, ClientError):
            return  # ages stay n/a: depths matter more than ages
        for result in response.get("MetricDataResults", []):
            queue = self._queues[int(result.get("Id", "q0")[1:])]
            values = result.get("Values", [])
            self._ages[queue.name] = values[0] if values else None

    def _refresh_jobs(self, now: datetime) -> None:
        """List the newest job IDs of the window (one Query), read those not known final (one BatchGetItem)."""
        window_start = now - timedelta(minutes=WINDOW_MINUTES)
        try:
            listed = self.ledger.newest_job_ids(window_start, now=now, limit=NEWEST_LIMIT)
            stale = [
                job_id for job_id in listed if job_id not in self._jobs or self._jobs[job_id].status not in SETTLED
            ]
            for job in self.ledger.items(stale):
                self._jobs[job.job_id] = job
            self._ledger_note = ""
        except LedgerUnavailable as note:
            self._ledger_note = str(note)
            return
        self._sampled = len(listed) >= NEWEST_LIMIT
        kept = set(listed)
        self._jobs = {key: job for key, job in self._jobs.items() if key in kept}

    def _per_minute(self, now: datetime) -> list[tuple[str, Counter[str]]]:
        """Jobs that reached an outcome in each of the last minutes, oldest first."""
        minutes = [(now - timedelta(minutes=back)).strftime("%H:%M") for back in range(WINDOW_MINUTES - 1, -1, -1)]
        counts: dict[str, Counter[str]] = {minute: Counter() for minute in minutes}
        for job in self._jobs.values():
            minute = job.updated_at[11:16]
            if job.status in OUTCOMES and minute in counts:
                counts[minute][job.status] += 1
        return list(counts.items())

    def _services(self) -> tuple[list[status.ServiceStatus], str]:
        if self._ecs_retry_at is not None and self.clock() < self._ecs_retry_at:
            return self._local_services("ECS: no cluster answered; asked again once a minute")
        try:
            return status.service_statuses(self.clients.ecs, self.deployment.cluster, SERVICES), ""
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            return self._no_ecs(f"cluster {self.deployment.cluster}: {code}")
        except (LookupError, BotoCoreError) as error:
            return self._no_ecs(str(error).splitlines()[0])

    def _no_ecs(self, why: str) -> tuple[list[status.ServiceStatus], str]:
        self._ecs_retry_at = self.clock() + SLOW_REFRESH_SECONDS
        return self._local_services(f"ECS: task counts not shown ({why})")

    def _local_services(self, note: str) -> tuple[list[status.ServiceStatus], str]:
        """Without ECS, the local supervisor's worker processes (no request), if it is running."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "").strip()
        counts = task_counts.read(task_counts.report_path(self.deployment.names, endpoint)) if endpoint else None
        if counts is None:
            return [], note
        services = [status.ServiceStatus(name, running, desired, 0) for name, (running, desired) in counts.items()]
        return services, "tasks: the local supervisor's worker processes (no ECS cluster)"


def run(
    clients: Clients,
    deployment: Deployment,
    *,
    ledger_table: str,
    out: TextIO,
    interval: float,
    once: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Refresh until Ctrl-C on a terminal; print one snapshot when ``once`` or when ``out`` is not a terminal."""
    counter = RequestCount(clients)
    source = TopSource(clients, deployment, Ledger(clients.dynamodb, ledger_table))
    interval = min(max(interval, 1.0), 10.0)

    def snapshot() -> Group:
        before = counter.total
        view = source.refresh(datetime.now(UTC))
        return render(view, requests=counter.total - before, interval=interval)

    if once or not _is_terminal(out):
        Console(file=out, width=SNAPSHOT_WIDTH, force_terminal=False, color_system=None).print(snapshot())
        return 0
    with Live(snapshot(), screen=True, auto_refresh=False) as live:
        while True:
            sleep(interval)
            live.update(snapshot(), refresh=True)


def _is_terminal(out: TextIO) -> bool:
    return out is sys.stdout and out.isatty()
