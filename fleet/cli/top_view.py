"""``fleet top``'s picture of one refresh, drawn with rich: queues, jobs per minute, newest jobs, services.

Kept apart from the reading (fleet/cli/top.py) so the same view renders live on a terminal and once as
plain text into a pipe or a test.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from rich.console import Group
from rich.table import Table
from rich.text import Text

from common.ledger.schema import JobStatus
from fleet.cli import status
from fleet.cli.fleet_status import HIGHLIGHT
from fleet.cli.ledger import LedgerJob
from fleet.cli.render import duration

_OUTCOME_COLUMNS: Final = (JobStatus.SUCCEEDED, JobStatus.RETRYING, JobStatus.DEAD, JobStatus.CANCELLED)
_STATUS_STYLES: Final[dict[str, str]] = {
    JobStatus.SUCCEEDED: "green",
    JobStatus.RETRYING: "yellow",
    JobStatus.DEAD: "bold red",
    JobStatus.CANCELLED: "magenta",
    JobStatus.RUNNING: "cyan",
}


@dataclass(frozen=True, slots=True)
class TopView:
    taken_at: datetime
    queues: list[status.QueueStatus]
    dlqs: frozenset[str]
    per_minute: list[tuple[str, Counter[str]]]
    newest: list[LedgerJob]
    services: list[status.ServiceStatus]
    notes: list[str]

    def needs_attention(self, queue: status.QueueStatus) -> bool:
        return queue.name in self.dlqs and (queue.visible + queue.not_visible + queue.delayed) > 0


def render(view: TopView, *, requests: int, interval: float) -> Group:
    header = Text(
        f"fleet top  {view.taken_at:%Y-%m-%d %H:%M:%S}Z  every {interval:g}s  "
        f"{requests} AWS requests this refresh  (Ctrl-C to quit)",
        style="bold",
    )
    parts: list[Table | Text] = [header, _queues(view), _per_minute(view), _newest(view)]
    if view.services:
        parts.append(_services(view))
    parts += [Text(note, style="dim") for note in view.notes]
    return Group(*parts)


def _queues(view: TopView) -> Table:
    table = Table(title="queues", title_justify="left", expand=False)
    table.add_column("QUEUE", no_wrap=True, min_width=max((len(queue.name) for queue in view.queues), default=5))
    for name in ("VISIBLE", "IN FLIGHT", "DELAYED"):
        table.add_column(name, justify="right")
    table.add_column("OLDEST", justify="right")
    table.add_column("")
    for queue in view.queues:
        alert = view.needs_attention(queue)
        table.add_row(
            queue.name,
            str(queue.visible),
            str(queue.not_visible),
            str(queue.delayed),
            status.format_age(queue.oldest_age_seconds),
            HIGHLIGHT if alert else "",
            style="bold red" if alert else None,
        )
    return table


def _per_minute(view: TopView) -> Table:
    table = Table(title="jobs per minute (ledger)", title_justify="left")
    table.add_column("MINUTE")
    for outcome in _OUTCOME_COLUMNS:
        table.add_column(outcome.upper(), justify="right", style=_STATUS_STYLES[outcome])
    for minute, counts in view.per_minute:
        table.add_row(minute, *(str(counts.get(outcome, 0)) for outcome in _OUTCOME_COLUMNS))
    return table


def _newest(view: TopView) -> Table:
    table = Table(title="newest jobs (ledger)", title_justify="left")
    for name in ("JOB ID", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "PROGRESS", "UPDATED"):
        table.add_column(name, justify="right" if name in ("ATTEMPTS", "DURATION") else "left")
    for job in view.newest:
        shown = job.status + (" (cancel requested)" if job.cancel_requested_at and job.status != "cancelled" else "")
        table.add_row(
            job.job_id,
            job.job_type or "-",
            Text(shown, style=_STATUS_STYLES.get(job.status, "")),
            str(job.attempts),
            duration(job.duration_ms),
            job.progress_text(),
            job.updated_at[11:23] or "-",
        )
    if not view.newest:
        table.add_row("no jobs in the last minutes", "", "", "", "", "", "")
    return table


def _services(view: TopView) -> Table:
    table = Table(title="services", title_justify="left")
    for name in ("SERVICE", "RUNNING", "DESIRED", "PENDING"):
        table.add_column(name, justify="left" if name == "SERVICE" else "right")
    for service in view.services:
        table.add_row(service.name, str(service.running), str(service.desired), str(service.pending))
    return table
