"""Bad input through the real fleet: every hostile message is quarantined with its reason, nothing else moves.

Hostile messages go out interleaved with valid ones, so they share receive batches with them. Each must
reach its DLQ with the exact reason; each valid neighbour must run on its first delivery (the batch was
not held up); the workers must never restart; and every line a worker writes must be one JSON object
naming one event, whatever the input tried to smuggle into it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from common.job_ids import is_valid_job_id, job_id_for_message
from common.messages import BackgroundJob
from common.sqs.quarantine import ATTR_ORIGINAL_MESSAGE_ID, ATTR_REASON
from tests.reliability.corpus import BACKGROUND_CASES, FORGED, NEUTRALIZED_TRIGGERS, TRIGGER_CASES, Case
from tests.reliability.harness import Fleet, events_named, executions, job_ids_by_message, running_fleet
from tests.reliability.report import record
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    with running_fleet("badinput") as running:
        yield running


def _collect(fleet: Fleet, queue: str, count: int) -> list[dict[str, Any]]:
    """Receive ``count`` messages from a DLQ as they arrive (each is hidden once received)."""
    found: dict[str, dict[str, Any]] = {}

    def enough() -> bool:
        found.update({m["MessageId"]: m for m in fleet.drain(queue)})
        return len(found) >= count

    wait_until(enough, timeout=90, interval=1, what=f"{count} messages in {queue}")
    return list(found.values())


def _interleave(bad: list[Any], good: list[Any]) -> list[tuple[Any, bool]]:
    mixed: list[tuple[Any, bool]] = []
    for index in range(max(len(bad), len(good))):
        mixed += [(bad[index], False)] if index < len(bad) else []
        mixed += [(good[index], True)] if index < len(good) else []
    return mixed


def _mismatches(cases: dict[str, Case], parked: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Cases whose DLQ reason is not the expected one: kind to (expected, got)."""
    return {
        case.kind: (case.reason, parked.get(message_id, "<not quarantined>")[:200])
        for message_id, case in cases.items()
        if not case.matches(parked.get(message_id, ""))
    }


def test_every_hostile_trigger_is_quarantined_with_its_reason_and_its_neighbours_run(fleet: Fleet) -> None:
    """Each kind reaches a DLQ with a precise reason; valid triggers in the same batches run first time."""
    good = [json.dumps({"trigger": "neighbour", "data": {"i": i}}) for i in range(len(TRIGGER_CASES))]
    mixed = _interleave(TRIGGER_CASES, good)
    bodies = [item.body if not valid else item for item, valid in mixed]
    ids = fleet.send("trigger", bodies)
    cases = {m: item for m, (item, valid) in zip(ids, mixed, strict=True) if not valid}
    good_ids = [m for m, (_, valid) in zip(ids, mixed, strict=True) if valid]
    neutral_ids = fleet.send(
        "trigger", [body for _, body, _ in NEUTRALIZED_TRIGGERS], [attrs for _, _, attrs in NEUTRALIZED_TRIGGERS]
    )
    in_background_dlq = [c for c in cases.values() if c.parked_in == "background_dlq"]

    trigger_dlq = _collect(fleet, "trigger_dlq", len(cases) - len(in_background_dlq))
    background_dlq = _collect(fleet, "background_dlq", len(in_background_dlq))

    def all_ran() -> tuple[dict[str, set[str]], dict[str, int]] | None:
        derived = job_ids_by_message(fleet.main_job_log())
        runs = executions(fleet.background_log())
        wanted = [*good_ids, *neutral_ids]
        done = all(m in derived and all(runs[j] for j in derived[m]) for m in wanted)
        return (derived, dict(runs)) if done else None

    derived, runs = wait_until(all_ran, timeout=60, interval=1, what="every valid trigger to run")
    main_log = fleet.main_job_log()

    parked = {m["MessageAttributes"][ATTR_ORIGINAL_MESSAGE_ID]["StringValue"]: m for m in trigger_dlq}
    reasons = {m: message["MessageAttributes"][ATTR_REASON]["StringValue"] for m, message in parked.items()}
    for case in in_background_dlq:
        [message] = background_dlq
        [trigger_id] = [m for m, c in cases.items() if c is case]
        reasons[trigger_id] = message["MessageAttributes"][ATTR_REASON]["StringValue"]
    first_deliveries = {
        line["message_id"]: line["receive_count"] for line in events_named(main_log, "trigger.received")
    }
    record(
        "bad_input_triggers",
        hostile_kinds=len(cases),
        neutralized_kinds=len(neutral_ids),
        valid_neighbours=len(good_ids),
        quarantined=len(trigger_dlq) + len(background_dlq),
        neighbours_succeeded=sum(1 for m in good_ids if all(runs.get(j) for j in derived[m])),
        worker_restarts=len(fleet.exits()),
    )
    assert {} == _mismatches(cases, reasons)
    assert {message["Body"] for message in parked.values()} == {
        case.body for message_id, case in cases.items() if message_id in parked
    }
    assert all(1 == first_deliveries[m] for m in good_ids), "a valid neighbour was retried"
    assert all(1 == runs[next(iter(derived[m]))] for m in [*good_ids, *neutral_ids])
    for message_id in neutral_ids:
        [job_id] = derived[message_id]
        assert is_valid_job_id(job_id)
        assert job_id != "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert [] == fleet.exits()


def _background(name: str) -> tuple[str, dict[str, str], str]:
    job = BackgroundJob(
        job_id=job_id_for_message(name, int(datetime.now(UTC).timestamp() * 1000)),
        job_type="main-job-processing",
        correlation_id=f"corr-{name}",
        trigger={"trigger": "neighbour", "data": {"userId": name}},
        enqueued_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    attributes = {key: value["StringValue"] for key, value in job.message_attributes().items()}
    return job.to_body(), attributes, job.job_id


def test_every_hostile_background_message_is_quarantined_and_its_neighbours_run_once(fleet: Fleet) -> None:
    """Broken, forged and path-traversing job messages are parked with their reason; valid ones run first time."""
    good = [_background(f"bg-neighbour-{i}") for i in range(len(BACKGROUND_CASES))]
    mixed = _interleave(BACKGROUND_CASES, good)
    ids = fleet.send(
        "background",
        [item.body if not valid else item[0] for item, valid in mixed],
        [item.attributes if not valid else item[1] for item, valid in mixed],
    )
    cases = {m: item for m, (item, valid) in zip(ids, mixed, strict=True) if not valid}
    good_jobs = [item[2] for item, valid in mixed if valid]

    dlq = _collect(fleet, "background_dlq", len(cases))
    runs = wait_until(
        lambda: (r := executions(fleet.background_log())) and all(r[j] for j in good_jobs) and r,
        timeout=60,
        interval=1,
        what="every valid job to succeed",
    )
    succeeded = [line for line in events_named(fleet.background_log(), "job.succeeded") if line["job_id"] in good_jobs]

    reasons = {m["MessageAttributes"][ATTR_ORIGINAL_MESSAGE_ID]["StringValue"]: m for m in dlq}
    record(
        "bad_input_background",
        hostile_kinds=len(cases),
        valid_neighbours=len(good_jobs),
        quarantined=len(dlq),
        neighbours_succeeded=sum(1 for j in good_jobs if runs[j]),
        worker_restarts=len(fleet.exits()),
    )
    assert {} == _mismatches(
        cases, {m: message["MessageAttributes"][ATTR_REASON]["StringValue"] for m, message in reasons.items()}
    )
    assert {job_id: 1 for job_id in good_jobs} == {job_id: runs[job_id] for job_id in good_jobs}
    assert {1} == {line["attempt"] for line in succeeded}
    assert [] == fleet.exits()


def test_no_worker_line_can_be_mistaken_for_another_event(fleet: Fleet) -> None:
    """After both corpora: every stdout line is one JSON object with one event, and nothing forged shows."""
    shipped = [
        message
        for group in (fleet.names.main_job_log_group, fleet.names.background_job_log_group)
        for _, message in fleet.service_lines(group, group.rsplit("/", 1)[1] + "/")
    ]
    lines = [json.loads(message) for message in shipped]
    stream_names = [
        s["logStreamName"]
        for s in fleet.logs.describe_log_streams(
            logGroupName=fleet.names.background_job_log_group, logStreamNamePrefix="job-streams/"
        )["logStreams"]
    ]

    record("bad_input_log_lines", worker_lines=len(lines), job_streams=len(stream_names))
    assert [] == [line for line in lines if not isinstance(line, dict)]
    assert [] == [line for line in lines if not (isinstance(line.get("event"), str) or "_aws" in line)]
    assert [] == [line for line in lines if "event" in line and "_aws" in line]
    assert [] == [line for line in lines if FORGED in (line.get("job_id"), line.get("jobId"))]
    assert [] == [message for message in shipped if "\n" in message]
    assert [] == [name for name in stream_names if not is_valid_job_id(name.rsplit("/", 1)[1])]
