"""Scenarios 6 and 7: a job that always fails, and a trigger SQS delivers twice."""

from __future__ import annotations

import json

from tests.reliability.harness import WorkerProcess, events_named, executions, job_ids_by_message, running_fleet
from tests.reliability.report import record
from tests.waiting import wait_until

MAX_RECEIVE_COUNT = 4


def test_poison_job_backs_off_lands_in_the_dlq_and_its_stream_records_every_attempt() -> None:
    """diagnostic-fail: retried with growing delays, then moved to the background DLQ with its reason."""
    # Four runs: MAX_ATTEMPTS decides the give-up; the receive-count backstop sits at the same count here.
    settings = {
        "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        "MAX_ATTEMPTS": str(MAX_RECEIVE_COUNT),
        "RETRY_BASE_SECONDS": "2",
    }
    with running_fleet("poison", settings=settings) as fleet:
        [trigger_id] = fleet.send("trigger", [json.dumps({"trigger": "poison", "jobType": "diagnostic-fail"})])
        wait_until(lambda: fleet.depth("background_dlq")[0] == 1, timeout=90, interval=0.5, what="the DLQ")
        [job_id] = job_ids_by_message(fleet.main_job_log())[trigger_id]
        wait_until(
            lambda: events_named(fleet.background_log(), "message.dead_letter_handoff"),
            timeout=15,
            what="every retry line shipped",
        )
        log = fleet.background_log()
        stream = fleet.job_stream(job_id)
        [parked] = fleet.drain("background_dlq")
        source_depth = fleet.depth("background")

    failed = events_named(log, "job.failed", job_id=job_id)
    message_ids = {line["message_id"] for line in failed}
    retries = [line for line in events_named(log, "message.retry_scheduled") if line["message_id"] in message_ids]
    delays = [line["visible_in_seconds"] for line in retries]
    handoffs = [line for line in events_named(log, "message.dead_letter_handoff") if line["message_id"] in message_ids]
    stream_failures = [e for e in stream if e["message"] == "job.failed"]
    record(
        "poison",
        messages_in=1,
        max_receive_count=MAX_RECEIVE_COUNT,
        attempts=len(stream_failures),
        retry_delays_seconds=delays,
        background_dlq=1,
        jobs_succeeded=0,
    )
    assert [1, 2, 3, 4] == [e["attempt"] for e in stream if e["message"] == "job.started"]
    assert [True, True, True, False] == [e["will_retry"] for e in stream_failures]
    assert {"DiagnosticFailure"} == {e["error_type"] for e in stream_failures}
    assert [1, 2, 3] == [line["receive_count"] for line in retries]
    assert {job_id} == {line["job_id"] for line in retries}
    # Equal jitter on base 2 s: attempt n waits between 2^n/2 and 2^n seconds, so the delays grow.
    assert delays == sorted(delays)
    assert delays[2] > delays[0]
    # The last attempt is moved to the DLQ by the worker, with its reason, and says so.
    assert [(4, job_id)] == [(line["receive_count"], line["job_id"]) for line in handoffs]
    assert message_ids == {parked["MessageAttributes"]["OriginalMessageId"]["StringValue"]}
    assert parked["MessageAttributes"]["QuarantineReason"]["StringValue"].startswith("attempts exhausted: ")
    assert job_id == json.loads(parked["Body"])["jobId"]
    assert (0, 0) == source_depth
    assert {} == dict(executions(log))


def test_redelivered_trigger_keeps_its_job_id_and_the_duplicate_is_visible() -> None:
    """A trigger whose delete never reached SQS comes back: same MessageId, same jobId, a warning."""
    with running_fleet("redelivery", background_workers=0) as fleet:
        fleet.set_faults([{"operation": "DeleteMessageBatch", "kind": "unavailable", "rate": 1.0}])
        [trigger_id] = fleet.send("trigger", [json.dumps({"trigger": "redelivery", "data": {"userId": "u-1"}})])
        wait_until(
            lambda: events_named(fleet.main_job_log(), "message.delete_failed", message_id=trigger_id),
            timeout=60,
            interval=0.5,
            what="main-job to give up deleting the trigger",
        )
        fleet.set_faults([])
        wait_until(
            lambda: events_named(fleet.main_job_log(), "trigger.redelivered"),
            timeout=60,
            interval=0.5,
            what="the trigger to come back after its visibility timeout",
        )
        wait_until(lambda: fleet.depth("trigger") == (0, 0), timeout=30, what="the second delivery to settle")
        worker = WorkerProcess.start("background_job", fleet.worker_env())
        try:
            wait_until(lambda: len(worker.events("job.succeeded")) == 2, timeout=30, what="both background jobs")
            assert 0 == worker.stop()
        finally:
            worker.kill()
        main_log = fleet.main_job_log()
        trigger_dlq = fleet.drain("trigger_dlq")
        job_ids = {line["job_id"] for line in events_named(main_log, "trigger.received", message_id=trigger_id)}
        stream = fleet.job_stream(next(iter(job_ids)))

    received = events_named(main_log, "trigger.received", message_id=trigger_id)
    [job_id] = {line["job_id"] for line in received}
    [warning] = events_named(main_log, "trigger.redelivered")
    runs = executions(worker.lines())
    stream_starts = [e for e in stream if e["message"] == "job.started"]
    record(
        "redelivered_trigger",
        messages_in=1,
        deliveries=len(received),
        distinct_job_ids=1,
        executions=runs[job_id],
        duplicate_warnings=1,
    )
    assert [1, 2] == [line["receive_count"] for line in received]
    assert job_id == warning["duplicate_of_job"] == warning["job_id"]
    assert "warning" == warning["level"]
    assert {job_id: 2} == dict(runs)
    assert 2 == len(stream_starts)
    assert {job_id} == {e["jobId"] for e in stream_starts}
    assert [] == trigger_dlq
