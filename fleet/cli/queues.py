"""Queue names as operators type them, resolved to URLs with GetQueueUrl.

A queue can be given by its short alias (``triggers``, ``triggers-dlq``, ``background``,
``background-dlq``), by its full name, or by its URL. Only names are resolved: URLs are used as they are,
so a command works against any endpoint that boto3 is configured for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from common.names import FleetNames
from fleet.cli.errors import OpsError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_MISSING_QUEUE_CODES: Final = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


@dataclass(frozen=True, slots=True)
class Queue:
    """A resolved queue; ``alias`` is its short name when it is one of the fleet's four."""

    name: str
    url: str
    alias: str = ""

    @property
    def is_dlq(self) -> bool:
        return self.name.endswith("-dlq")


def aliases(names: FleetNames) -> dict[str, str]:
    """Short alias to full queue name, in display order: each source queue, then its DLQ."""
    return {
        "triggers": names.trigger_queue,
        "triggers-dlq": names.trigger_dlq,
        "background": names.background_queue,
        "background-dlq": names.background_dlq,
    }


def queue_name_from_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def resolve(sqs: SQSClient, names: FleetNames, queue: str) -> Queue:
    """Resolve an alias, name or URL; raise :class:`OpsError` naming the queue if it does not exist."""
    known = aliases(names)
    by_name = {name: alias for alias, name in known.items()}
    if "://" in queue:
        name = queue_name_from_url(queue)
        return Queue(name=name, url=queue, alias=by_name.get(name, ""))
    name = known.get(queue, queue)
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _MISSING_QUEUE_CODES:
            hint = f" (known aliases: {', '.join(known)})" if queue not in known else ""
            raise OpsError(f"queue {name} does not exist{hint}") from None
        raise
    return Queue(name=name, url=url, alias=by_name.get(name, ""))


def resolve_dlq(sqs: SQSClient, names: FleetNames, queue: str) -> Queue:
    """Like :func:`resolve`, but a source queue's alias or name means its DLQ."""
    sources = {**{alias: alias + "-dlq" for alias in ("triggers", "background")}, **names.queues()}
    return resolve(sqs, names, sources.get(queue, queue))


def source_of(sqs: SQSClient, names: FleetNames, dlq: Queue) -> Queue:
    """The queue a DLQ's messages came from: the fleet's own pairing, else ListDeadLetterSourceQueues."""
    for source, dead_letter in names.queues().items():
        if dead_letter == dlq.name:
            return resolve(sqs, names, source)
    urls = sqs.list_dead_letter_source_queues(QueueUrl=dlq.url).get("queueUrls", [])
    if len(urls) != 1:
        raise OpsError(f"cannot tell where {dlq.name} redrives to: {len(urls)} source queues name it as their DLQ")
    return resolve(sqs, names, urls[0])


def fleet_queues(sqs: SQSClient, names: FleetNames) -> list[Queue]:
    """The fleet's four queues, each source queue followed by its DLQ."""
    return [resolve(sqs, names, alias) for alias in aliases(names)]
