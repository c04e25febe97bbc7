"""main_job: triggers become background jobs, in batches, deleted only once their job is enqueued."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from structlog.testing import capture_logs

from common.job_ids import job_id_for_message, job_id_for_tick
from common.job_log.log import job_stream_name
from common.messages import DEFAULT_JOB_TYPE
from common.metrics import MetricsEmitter
from common.names import MAIN_JOB_SERVICE
from common.sqs.dispatch import BatchDispatcher
from common.sqs.in_flight import InFlight
from common.sqs.inbound import InboundMessage
from common.sqs.quarantine import ATTR_REASON
from common.sqs.settlement import Outcome, Verdict
from common.sqs.shutdown import Shutdown
from main_job import service
from main_job.triggers import TriggerHandler
from tests.conftest import AwsFleet
from tests.consumer_thread import consumer_running
from tests.faults import FaultInjector
from tests.waiting import wait_until

ORIGINAL_EXAMPLE = {
    "trigger": "api_call",
    "timestamp": "2026-11-22T10:00:00.000Z",
    "triggerBackgroundJob": True,
    "data": {"userId": "test123", "action": "process_data"},
}


def _handler(fleet: AwsFleet) -> TriggerHandler:
    return TriggerHandler(
        sqs=fleet.sqs,
        background_queue_url=fleet.urls.background,
        metrics_emitter=MetricsEmitter("Test", MAIN_JOB_SERVICE, io.StringIO()),
    )


def _receive_triggers(fleet: AwsFleet, *documents: dict[str, Any] | str) -> list[InboundMessage]:
    for document in documents:
        body = document if isinstance(document, str) else json.dumps(document)
        fleet.sqs.send_message(QueueUrl=fleet.urls.trigger, MessageBody=body)
    return [InboundMessage.from_sqs(raw) for raw in fleet.receive_all(fleet.urls.trigger)]


def _background_messages(fleet: AwsFleet) -> list[dict[str, Any]]:
    return fleet.receive_all(fleet.urls.background)


def test_trigger_becomes_a_background_job_with_the_contract_fields(aws_fleet: AwsFleet) -> None:
    """The background message carries jobId, jobType, correlationId, the original trigger and enqueuedAt."""
    [trigger] = _receive_triggers(aws_fleet, {**ORIGINAL_EXAMPLE, "tenant": "acme"})

    outcomes = _handler(aws_fleet)([trigger])

    [message] = _background_messages(aws_fleet)
    body = json.loads(message["Body"])
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert {trigger.message_id: Outcome.done()} == outcomes
    assert job_id_for_message(trigger.message_id, trigger.sent_timestamp_ms) == body["jobId"]
    assert DEFAULT_JOB_TYPE == body["jobType"]
    assert {**ORIGINAL_EXAMPLE, "tenant": "acme"} == body["trigger"]
    assert "enqueuedAt" in body
    assert {
        "jobId": body["jobId"],
        "jobType": body["jobType"],
        "correlationId": body["correlationId"],
    } == attributes


def test_correlation_id_from_the_trigger_is_kept(aws_fleet: AwsFleet) -> None:
    """A caller's correlationId travels with the job instead of a generated one."""
    [trigger] = _receive_triggers(aws_fleet, {"trigger": "t", "correlationId": "req-7f3a"})

    _handler(aws_fleet)([trigger])

    [message] = _background_messages(aws_fleet)
    assert "req-7f3a" == json.loads(message["Body"])["correlationId"]


def test_trigger_without_background_job_is_completed_without_enqueueing(aws_fleet: AwsFleet) -> None:
    """triggerBackgroundJob: false is logged and deleted, and nothing is enqueued."""
    [trigger] = _receive_triggers(aws_fleet, {"trigger": "t", "triggerBackgroundJob": False})

    outcomes = _handler(aws_fleet)([trigger])

    assert {trigger.message_id: Outcome.done()} == outcomes
    assert [] == _background_messages(aws_fleet)


def test_a_batch_of_ten_triggers_is_one_send_batch(aws_fleet: AwsFleet) -> None:
    """Ten triggers received together cost a single SendMessageBatch."""
    triggers = _receive_triggers(aws_fleet, *[{"trigger": f"t{i}"} for i in range(10)])
    assert 10 == len(triggers)

    _handler(aws_fleet)(triggers)

    assert 1 == aws_fleet.requests.calls["SendMessageBatch"]
    assert 10 == aws_fleet.requests.calls["SendMessage"]  # the test's own sends; main_job never sends singly


def test_malformed_trigger_is_quarantined_and_does_not_hold_up_its_batch(aws_fleet: AwsFleet) -> None:
    """A bad trigger is refused with its reason while the good ones in the same batch are enqueued."""
    triggers = _receive_triggers(aws_fleet, {"trigger": "good-1"}, "{oops", {"trigger": "good-2"})

    outcomes = _handler(aws_fleet)(triggers)

    verdicts = sorted(outcome.verdict.value for outcome in outcomes.values())
    assert ["done", "done", "quarantine"] == verdicts
    assert 2 == len(_background_messages(aws_fleet))


def test_enqueue_failure_defers_the_trigger_instead_of_deleting_it(aws_fleet: AwsFleet) -> None:
    """If the background queue is unreachable, the trigger is kept (deferred) for another try, not deleted."""
    [trigger] = _receive_triggers(aws_fleet, {"trigger": "t"})
    FaultInjector(aws_fleet.sqs).fail("SendMessageBatch", "down")

    outcomes = _handler(aws_fleet)([trigger])

    assert Verdict.DEFER == outcomes[trigger.message_id].verdict


def test_main_job_stops_receiving_while_enqueues_fail_so_no_trigger_is_dead_lettered(aws_fleet: AwsFleet) -> None:
    """While SendMessageBatch keeps failing the worker holds its batch: one receive, no DLQ, then success."""
    faults = FaultInjector(aws_fleet.sqs)
    faults.fail("SendMessageBatch", "unavailable")
    shutdown = Shutdown()
    consumer = service.build(aws_fleet.settings(MAIN_JOB_SERVICE, receive_wait_seconds=1), shutdown, sqs=aws_fleet.sqs)
    aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.trigger, MessageBody='{"trigger":"during-outage"}')
    received: list[str] = []
    aws_fleet.sqs.meta.events.register(
        "after-call.sqs.ReceiveMessage",
        lambda parsed, **_: received.extend(m["MessageId"] for m in parsed.get("Messages", [])),
    )
    with consumer_running(consumer, shutdown):
        # MAX_RECEIVE_COUNT (3) failed SendMessageBatch calls of 4 attempts each: retried through
        # visibility, the trigger would have been received three times and be on its way to the DLQ.
        wait_until(lambda: faults.injected.get("SendMessageBatch", 0) >= 4 * 4, timeout=150, what="failed enqueues")
        faults.clear()
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.trigger) == (0, 0), timeout=60, what="the trigger settled")

    assert 1 == len(received)
    assert [] == aws_fleet.receive_all(aws_fleet.urls.trigger_dlq)
    assert 1 == len(_background_messages(aws_fleet))


def test_redelivered_trigger_keeps_its_job_id_and_is_logged_as_duplicate(aws_fleet: AwsFleet) -> None:
    """A trigger seen twice (crash before delete) yields the same jobId, and the duplicate is visible."""
    [first] = _receive_triggers(aws_fleet, {"trigger": "t"})
    _handler(aws_fleet)([first])  # enqueued, but the worker dies before deleting the trigger
    aws_fleet.sqs.change_message_visibility(
        QueueUrl=aws_fleet.urls.trigger, ReceiptHandle=first.receipt_handle, VisibilityTimeout=0
    )
    [second] = [InboundMessage.from_sqs(raw) for raw in aws_fleet.receive_all(aws_fleet.urls.trigger)]

    with capture_logs() as logs:
        _handler(aws_fleet)([second])

    job_ids = {json.loads(m["Body"])["jobId"] for m in _background_messages(aws_fleet)}
    [duplicate] = [entry for entry in logs if entry["event"] == "trigger.redelivered"]
    assert (first.message_id, 2) == (second.message_id, second.receive_count)
    assert {job_id_for_message(first.message_id, first.sent_timestamp_ms)} == job_ids
    assert duplicate["duplicate_of_job"] in job_ids


def test_main_job_worker_quarantines_bad_triggers_and_completes_good_ones(aws_fleet: AwsFleet) -> None:
    """The assembled main_job worker: bad triggers land in the trigger DLQ with a reason, good ones are enqueued."""
    shutdown = Shutdown()
    consumer = service.build(aws_fleet.settings(MAIN_JOB_SERVICE, receive_wait_seconds=1), shutdown, sqs=aws_fleet.sqs)
    for body in ('{"trigger":"a"}', "[1,2,3]", '{"trigger":"b","data":"not-an-object"}', '{"trigger":"c"}'):
        aws_fleet.sqs.send_message(QueueUrl=aws_fleet.urls.trigger, MessageBody=body)
    with consumer_running(consumer, shutdown):
        wait_until(lambda: aws_fleet.depth(aws_fleet.urls.trigger) == (0, 0), timeout=60, what="triggers settled")

    reasons = sorted(
        m["MessageAttributes"][ATTR_REASON]["StringValue"] for m in aws_fleet.receive_all(aws_fleet.urls.trigger_dlq)
    )
    assert ["body must be a JSON object, got array", "field 'data' must be an object, got string"] == reasons
    assert 2 == len(_background_messages(aws_fleet))


def test_batch_dispatcher_retries_every_message_if_the_handler_crashes() -> None:
    """A bug in batch handling costs a retry of the batch, never a lost trigger."""

    def broken(_messages: Any) -> dict[str, Outcome]:
        raise RuntimeError("bug")

    in_flight = InFlight(30)
    leases = in_flight.open([InboundMessage("m1", "r1", "one", 1, 0), InboundMessage("m2", "r2", "two", 1, 0)])
    BatchDispatcher(broken).dispatch(leases)

    settled = [
        (lease.message.body, lease.outcome.verdict if lease.outcome else None) for lease in in_flight.take_finished()
    ]
    assert [("one", Verdict.RETRY), ("two", Verdict.RETRY)] == settled


def test_one_schedule_tick_delivered_twice_is_one_job(aws_fleet: AwsFleet) -> None:
    """Scheduler may send a tick twice (two MessageIds): both get the job ID of the tick, and one correlation ID."""
    tick = {"trigger": "nightly", "schedule": {"name": "nightly-report", "scheduledTime": "2026-12-04T02:00:00Z"}}
    triggers = _receive_triggers(aws_fleet, tick, tick)

    _handler(aws_fleet)(triggers)

    jobs = [json.loads(m["Body"]) for m in _background_messages(aws_fleet)]
    expected = job_id_for_tick("nightly-report", datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    assert 2 == len({t.message_id for t in triggers})
    assert [expected, expected] == [job["jobId"] for job in jobs]
    assert 1 == len({job["correlationId"] for job in jobs})


def test_an_accepted_trigger_is_one_line_without_null_fields(aws_fleet: AwsFleet) -> None:
    """One line per accepted trigger, naming the job and its stream; null fields left out (issue 28: bytes)."""
    [trigger] = _receive_triggers(aws_fleet, {"trigger": "t", "data": {"b": 1, "a": 2}})

    with capture_logs() as logs:
        _handler(aws_fleet)([trigger])

    [received] = [entry for entry in logs if entry["event"] == "trigger.received"]
    assert ["trigger.received"] == [entry["event"] for entry in logs if entry["log_level"] == "info"]
    assert [] == [key for key, value in received.items() if value is None]
    assert ["a", "b"] == received["data_keys"]
    job_id = job_id_for_message(trigger.message_id, trigger.sent_timestamp_ms)
    assert job_stream_name(job_id) == received["job_stream"]  # job_id and message_id are bound (contextvars)
