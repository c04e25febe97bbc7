"""Trigger handling: validate, assign the job ID, enqueue the background job, report each outcome.

A whole received batch is handled at once so that its background jobs go out in one SendMessageBatch,
and a trigger is deleted only after its background message was accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from common import metrics
from common.job_ids import job_id_for_message, job_id_for_tick
from common.job_log.log import job_stream_name
from common.logging import bound_context, get_logger
from common.messages import BackgroundJob, MalformedMessage, Trigger, parse_trigger
from common.metrics import MetricsEmitter
from common.sqs.inbound import InboundMessage
from common.sqs.send_batch import send_message_batch
from common.sqs.settlement import Outcome, Verdict

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

log = get_logger(__name__)
#: Namespace for correlation IDs generated from the trigger's MessageId, so a redelivery keeps it.
_CORRELATION_NAMESPACE: Final = uuid.UUID("6f1c2a8e-3c1e-4e55-9a4e-2d4c8b1f7a10")


@dataclass(frozen=True, slots=True)
class _Accepted:
    message: InboundMessage
    trigger: Trigger
    job: BackgroundJob


def _job_identity(trigger: Trigger, message: InboundMessage) -> tuple[str, str]:
    """The job ID, and the text the generated correlation ID is derived from.

    A scheduled trigger is identified by its tick (schedule name and scheduled time): Scheduler may
    deliver one tick twice, as two messages, and both must be the same job so the ledger runs it once.
    Any other trigger is identified by its SQS message, which a redelivery keeps.
    """
    tick = trigger.schedule
    if tick is not None:
        return job_id_for_tick(tick.name, tick.scheduled_time), f"schedule:{tick.name}:{tick.scheduled_time_text}"
    return job_id_for_message(message.message_id, message.sent_timestamp_ms), message.message_id


class TriggerHandler:
    """The BatchHandler for the trigger queue."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        background_queue_url: str,
        metrics_emitter: MetricsEmitter,
    ) -> None:
        self._sqs = sqs
        self._background_queue_url = background_queue_url
        self._metrics = metrics_emitter

    def __call__(self, messages: Sequence[InboundMessage]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        to_enqueue: list[_Accepted] = []
        rejected = 0
        for message in messages:
            try:
                accepted = self._accept(message)
            except MalformedMessage as error:
                outcomes[message.message_id] = Outcome.quarantine(error.reason)
                rejected += 1
                continue
            if accepted.trigger.trigger_background_job:
                to_enqueue.append(accepted)
            else:
                log.info("trigger.completed", job_id=accepted.job.job_id, background_job=False)
                outcomes[message.message_id] = Outcome.done()
        sent = self._enqueue(to_enqueue) if to_enqueue else {}
        queued = sum(1 for outcome in sent.values() if outcome.verdict is Verdict.DONE)
        outcomes.update(sent)
        self._metrics.emit(
            {
                metrics.TRIGGERS_RECEIVED: len(messages),
                metrics.TRIGGERS_REJECTED: rejected,
                metrics.BACKGROUND_JOBS_QUEUED: queued,
            }
        )
        return outcomes

    def _accept(self, message: InboundMessage) -> _Accepted:
        trigger = parse_trigger(message.body)
        job_id, identity = _job_identity(trigger, message)
        job = BackgroundJob(
            job_id=job_id,
            job_type=trigger.job_type,
            correlation_id=trigger.correlation_id or str(uuid.uuid5(_CORRELATION_NAMESPACE, identity)),
            trigger=trigger.raw,
            trigger_text=trigger.text,
            enqueued_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        with bound_context(job_id=job.job_id, correlation_id=job.correlation_id, message_id=message.message_id):
            # The data payload may be large or sensitive: log its shape, not its values.
            # Null fields are left out, and the default (a background job) is not spelled (issue 28: bytes).
            optional = {
                "trigger_timestamp": trigger.timestamp,
                "schedule": trigger.schedule.to_document() if trigger.schedule else None,
                "trigger_background_job": None if trigger.trigger_background_job else False,
            }
            # main_job's one line per accepted trigger: written before the send, so a trigger whose send
            # then fails has this line and its background_job.enqueue_failed. A second "queued" line
            # after the send cost every job about 270 billed bytes and said nothing new (issue 28).
            log.info(
                "trigger.received",
                trigger=trigger.trigger,
                job_type=trigger.job_type,
                data_keys=sorted(trigger.data or {}),
                receive_count=message.receive_count,
                job_stream=job_stream_name(job.job_id),
                **{key: value for key, value in optional.items() if value is not None},
            )
            if message.receive_count > 1:
                log.warning("trigger.redelivered", receive_count=message.receive_count, duplicate_of_job=job.job_id)
        return _Accepted(message, trigger, job)

    def _enqueue(self, batch: list[_Accepted]) -> dict[str, Outcome]:
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "MessageBody": item.job.to_body(),
                "MessageAttributes": item.job.message_attributes(),
            }
            for index, item in enumerate(batch)
        ]
        # Packed by size and split on a content error, so an oversized job fails alone (common.sqs.send_batch).
        failed = send_message_batch(self._sqs, self._background_queue_url, entries)
        return {
            item.message.message_id: self._enqueue_outcome(item, failed.get(str(i))) for i, item in enumerate(batch)
        }

    @staticmethod
    def _enqueue_outcome(item: _Accepted, failure: Mapping[str, object] | None) -> Outcome:
        if failure is None:
            return Outcome.done()  # trigger.received said it all
        reason = f"background message rejected: {failure.get('Code')}: {failure.get('Message')}"
        log.warning(
            "background_job.enqueue_failed",
            job_id=item.job.job_id,
            correlation_id=item.job.correlation_id,
            job_type=item.job.job_type,
            message_id=item.message.message_id,
            reason=reason,
        )
        # A sender fault (too large, invalid characters) will fail the same way forever. Anything else is
        # the background queue failing: defer, so the worker holds this batch and stops receiving
        # instead of burning the triggers' receive counts into their DLQ (common.sqs.dispatch).
        return Outcome.quarantine(reason) if failure.get("SenderFault") else Outcome.defer(reason)
