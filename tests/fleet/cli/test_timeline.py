"""Tests for `fleet job` (fleet/cli/timeline.py) on moto."""

from __future__ import annotations

import json

import boto3

from common.job_ids import job_id_for_message
from common.job_log.log import job_stream_name
from fleet.local.provision import provision_job_ledger

from .conftest import REGION, job_start, later, new_job_id


def _events(result) -> list[list[str]]:
    """The timeline rows: timestamp, source, event name."""
    return [line.split()[:3] for line in result.out.splitlines() if line[:4].isdigit()]


def _summary(result) -> dict[str, str]:
    return {
        line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1]
        for line in result.out.splitlines()
        if line and not line[:4].isdigit() and len(line.split(maxsplit=1)) == 2
    }


def test_job_merges_main_job_events_and_the_job_stream_oldest_first(fleet, now):
    """Main-job lines and the job's stream are interleaved by time, whatever order they were written in."""
    job_id = new_job_id(1, now)
    sent = job_start(job_id)
    fleet.job_event(job_id, "job.started", later(sent, seconds=2), attempt=1, jobType="diagnostic-sleep")
    fleet.job_event(job_id, "job.succeeded", later(sent, seconds=5), duration_ms=3000)
    fleet.main_job_event(job_id, "trigger.received", later(sent, milliseconds=100), trigger="orders")

    result = fleet.run("job", job_id)

    assert 0 == result.code
    assert [
        ["main-job", "trigger.received"],
        ["job", "job.started"],
        ["job", "job.succeeded"],
    ] == [row[1:] for row in _events(result)]
    summary = _summary(result)
    assert "succeeded" == summary["status"]
    assert "1" == summary["attempts"]
    assert "3.0s" == summary["duration"]  # the run's duration_ms, what the ledger's duration is too
    assert "diagnostic-sleep" == summary["type"]


def test_an_older_release_s_queued_line_logged_after_the_job_ran_still_comes_first(fleet, now):
    """Releases before 2026-12-04 logged background_job.queued after SendMessageBatch returned; retained
    logs still hold such lines, and a later timestamp never puts one after the run."""
    job_id = new_job_id(7, now)
    sent = job_start(job_id)
    fleet.main_job_event(job_id, "trigger.received", later(sent, milliseconds=10))
    fleet.job_event(job_id, "job.started", later(sent, milliseconds=20))
    fleet.job_event(job_id, "job.succeeded", later(sent, milliseconds=25), duration_ms=5)
    fleet.main_job_event(job_id, "background_job.queued", later(sent, milliseconds=40))

    result = fleet.run("job", job_id)

    assert ["trigger.received", "background_job.queued", "job.started", "job.succeeded"] == [
        row[2] for row in _events(result)
    ]


def test_a_job_retried_then_failed_for_good_counts_every_attempt(fleet, now):
    """Two attempts, the last failure not retried: dead (as the ledger says), attempts 2, the last error."""
    job_id = new_job_id(2, now)
    sent = job_start(job_id)
    for attempt, will_retry in ((1, True), (2, False)):
        fleet.job_event(job_id, "job.started", later(sent, seconds=attempt * 10), attempt=attempt)
        fleet.job_event(
            job_id, "job.failed", later(sent, seconds=attempt * 10 + 1), error=f"boom {attempt}", will_retry=will_retry
        )

    summary = _summary(fleet.run("job", job_id))

    assert "dead" == summary["status"]
    assert "2" == summary["attempts"]
    assert "boom 2" == summary["last"].removeprefix("error").strip()
    assert "-" == summary["duration"]  # only a success has a duration, with or without the ledger


def test_a_failure_that_will_be_retried_leaves_the_job_retrying(fleet, now):
    """A job.failed with will_retry true is not the end: the job is retrying, as the ledger calls it."""
    job_id = new_job_id(3, now)
    fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=1), attempt=1)
    fleet.job_event(job_id, "job.failed", later(job_start(job_id), seconds=2), error="later", will_retry=True)

    summary = _summary(fleet.run("job", job_id))

    assert "retrying" == summary["status"]
    assert "-" == summary["duration"]


def test_a_retry_that_has_started_is_running_again(fleet, now):
    """Once the retry's job.started is logged, the job is running, not retrying."""
    job_id = new_job_id(8, now)
    fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=1), attempt=1)
    fleet.job_event(job_id, "job.failed", later(job_start(job_id), seconds=2), error="later", will_retry=True)
    fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=8), attempt=2)

    summary = _summary(fleet.run("job", job_id))

    assert ("running", "2") == (summary["status"], summary["attempts"])


def test_a_job_with_only_main_job_events_is_queued(fleet, now):
    """Before any worker starts it, the job is queued."""
    job_id = new_job_id(4, now)
    fleet.main_job_event(job_id, "trigger.received", later(job_start(job_id), seconds=1))

    summary = _summary(fleet.run("job", job_id))

    assert "queued" == summary["status"]
    assert "0" == summary["attempts"]


def test_lines_of_other_jobs_that_mention_the_id_are_not_in_the_timeline(fleet, now):
    """The filter term matches text; only lines whose job_id field is the job count."""
    job_id, other = new_job_id(5, now), new_job_id(6, now)
    fleet.main_job_event(job_id, "trigger.received", later(job_start(job_id), seconds=1))
    fleet.main_job_event(other, "trigger.redelivered", later(job_start(job_id), seconds=2), note=f"see {job_id}")

    result = fleet.run("job", job_id)

    assert [["main-job", "trigger.received"]] == [row[1:] for row in _events(result)]


def test_an_unknown_job_is_an_error_naming_both_log_groups(fleet, now):
    """No events anywhere: exit 1 and one line naming where it looked."""
    result = fleet.run("job", new_job_id(7, now))

    assert 1 == result.code
    assert fleet.names.main_job_log_group in result.err
    assert fleet.names.background_job_log_group in result.err


def test_follow_prints_new_events_until_the_job_ends(fleet, now):
    """--follow prints each event once, polls, and stops with the summary when the job succeeds."""
    job_id = new_job_id(8, now)
    sent = job_start(job_id)
    fleet.job_event(job_id, "job.started", later(sent, seconds=1), attempt=1)
    steps = iter(
        [
            lambda: fleet.job_event(job_id, "job.step", later(sent, seconds=2), step="halfway"),
            lambda: fleet.job_event(job_id, "job.succeeded", later(sent, seconds=3), duration_ms=2000),
        ]
    )

    def next_step() -> None:
        next(steps)()

    fleet.on_sleep = next_step

    result = fleet.run("job", job_id, "--follow", "--poll", "0.5")

    assert 0 == result.code
    assert [0.5, 0.5] == fleet.sleeps
    assert ["job.started", "job.step", "job.succeeded"] == [row[2] for row in _events(result)]
    assert "succeeded" == _summary(result)["status"]


def test_follow_exits_1_when_the_job_fails(fleet, now):
    """A job that fails for good ends --follow with exit status 1."""
    job_id = new_job_id(9, now)
    fleet.job_event(job_id, "job.failed", later(job_start(job_id), seconds=1), will_retry=False, error="x")

    result = fleet.run("job", job_id, "--follow")

    assert 1 == result.code
    assert [] == fleet.sleeps


def test_job_json_lists_every_event(fleet, now):
    """--json carries the status and each event with its source."""
    job_id = new_job_id(10, now)
    fleet.main_job_event(job_id, "trigger.received", later(job_start(job_id), seconds=1))
    fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=2), attempt=1)

    document = json.loads(fleet.run("job", job_id, "--json").out)

    assert "running" == document["status"]
    assert [("main-job", "trigger.received"), ("job", "job.started")] == [
        (event["source"], event["event"]) for event in document["events"]
    ]


def test_a_long_job_stream_is_read_to_its_end(fleet, now):
    """GetLogEvents is followed by nextForwardToken until it stops changing."""
    job_id = new_job_id(11, now)
    sent = job_start(job_id)
    stream = f"job-streams/{sent:%Y-%m-%d}/{job_id}"
    fleet.logs.create_log_stream(logGroupName=fleet.names.background_job_log_group, logStreamName=stream)
    events = [
        {"timestamp": int(sent.timestamp() * 1000) + i, "message": json.dumps({"message": "job.step", "i": i})}
        for i in range(10_500)
    ]
    for first in range(0, len(events), 5000):
        fleet.logs.put_log_events(
            logGroupName=fleet.names.background_job_log_group,
            logStreamName=stream,
            logEvents=events[first : first + 5000],
        )

    document = json.loads(fleet.run("job", job_id, "--json").out)

    assert 10_500 == len(document["events"])


def _raw_job_line(fleet, job_id: str, line: str, at) -> None:
    group = fleet.names.background_job_log_group
    fleet.logs.put_log_events(
        logGroupName=group,
        logStreamName=job_stream_name(job_id),
        logEvents=[{"timestamp": int(at.timestamp() * 1000), "message": line}],
    )


def test_truncated_and_non_json_stream_lines_are_shown_not_dropped(fleet, now):
    """An oversized step summarised with truncated/originalBytes gets a marker; a non-JSON line shows raw."""
    job_id = new_job_id(41, now)
    fleet.job_event(job_id, "job.started", later(now, seconds=1))
    fleet.job_event(job_id, "job.step", later(now, seconds=2), truncated=True, originalBytes=300000, step="dump")
    _raw_job_line(fleet, job_id, '{"message": "job.step", "payload": "abc', later(now, seconds=3))

    result = fleet.run("job", job_id)

    lines = result.out.splitlines()
    [truncated] = [line for line in lines if "job.step" in line and "dump" in line]
    assert "[truncated: 300000 bytes originally]" in truncated
    [raw] = [line for line in lines if "(not JSON)" in line]
    assert raw.endswith('raw={"message": "job.step", "payload": "abc')


def test_a_job_quarantined_by_background_job_shows_dead_from_the_logs(fleet, now, monkeypatch):
    """Without a ledger, a message.quarantined service line for the job makes it dead, with the reason."""
    monkeypatch.setenv("JOB_LEDGER_TABLE", "")
    job_id = new_job_id(42, now)
    fleet.main_job_event(job_id, "trigger.received", later(now, seconds=1))
    group, stream = fleet.names.background_job_log_group, "background-job/background-job/task-1"
    fleet.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    record = {"event": "message.quarantined", "job_id": job_id, "reason": "unknown jobType 'x'", "level": "error"}
    fleet.logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(later(now, seconds=2).timestamp() * 1000), "message": json.dumps(record)}],
    )

    result = fleet.run("job", job_id)

    assert "status       dead" in result.out.splitlines()
    assert "last error   unknown jobType 'x'" in result.out.splitlines()


def test_follow_on_a_job_with_no_events_says_it_waits_and_gives_up_at_the_deadline(fleet, now):
    """--follow on an unknown ID: one note saying how long it waits, then exit 1 instead of polling forever."""
    job_id = new_job_id(10, now)

    result = fleet.run("job", job_id, "--follow", "--poll", "5", "--wait", "20")

    assert 1 == result.code
    assert [5.0, 5.0, 5.0, 5.0] == fleet.sleeps
    assert [
        f"fleet: note: no events for job {job_id} yet: waiting up to 20s for them (Ctrl-C stops)",
        f"fleet: no events for job {job_id} after 20s: check the ID "
        "(or look it up with --message-id, from the MessageId that send-message printed)",
    ] == result.err.splitlines()


def test_follow_keeps_waiting_for_a_job_whose_first_event_comes_late(fleet, now):
    """A job queued a moment after --follow started is followed to its end, with the note shown once."""
    job_id = new_job_id(11, now)
    fleet.on_sleep = lambda: fleet.job_event(job_id, "job.succeeded", later(job_start(job_id), seconds=1))

    result = fleet.run("job", job_id, "--follow", "--poll", "1")

    assert 0 == result.code
    assert 1 == result.err.count("waiting up to 60s")


def test_job_by_message_id_finds_the_job_main_job_derived(fleet, now):
    """`fleet job --message-id` reads main-job's trigger.received line for that MessageId."""
    sent_ms = int(now.timestamp() * 1000) - 60_000
    job_id, other = job_id_for_message("m-12", sent_ms), job_id_for_message("m-13", sent_ms)
    fleet.main_job_event(other, "trigger.received", job_start(other), message_id="m-13")
    fleet.main_job_event(job_id, "trigger.received", job_start(job_id), message_id="m-12")
    fleet.job_event(job_id, "job.succeeded", later(job_start(job_id), seconds=1))

    result = fleet.run("job", "--message-id", "m-12", "--json")

    assert 0 == result.code, result.err
    assert job_id == json.loads(result.out)["job_id"]
    assert f"fleet: note: MessageId m-12 is job {job_id} (from the main-job log)" == result.err.splitlines()[0]


def test_job_needs_exactly_one_of_an_id_and_a_message_id(fleet, now):
    """Neither or both: a usage error (exit 2) naming both forms."""
    neither = fleet.run("job")
    both = fleet.run("job", new_job_id(14, now), "--message-id", "m-14")

    assert (2, 2) == (neither.code, both.code)
    assert "give a JOB_ID or --message-id MESSAGE_ID" in neither.err


def test_follow_shows_progress_from_the_ledger_and_stops_when_the_job_is_cancelled(fleet, now):
    """Each new progress report is one line; a job.cancelled event ends --follow with exit 1."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    provision_job_ledger(dynamodb, fleet.names.job_ledger_table)
    job_id = new_job_id(12, now)
    sent = job_start(job_id)
    fleet.job_event(job_id, "job.started", later(sent, seconds=1), attempt=1)

    def progress(value: str, note: str) -> None:
        item = {"jobId": {"S": job_id}, "status": {"S": "running"}, "updatedAt": {"S": "2026-12-04T10:00:00.000Z"}}
        item |= {"progress": {"N": value}, "progressNote": {"S": note}}
        dynamodb.put_item(TableName=fleet.names.job_ledger_table, Item=item)

    progress("0.25", "a quarter")
    steps = iter(
        [
            lambda: None,  # the same report again: not printed twice
            lambda: progress("0.5", "half"),
            lambda: fleet.job_event(job_id, "job.cancelled", later(sent, seconds=3), ran=True),
        ]
    )

    def next_step() -> None:
        next(steps)()

    fleet.on_sleep = next_step

    result = fleet.run("job", job_id, "--follow", "--poll", "0.5")

    assert 1 == result.code
    assert ["25% a quarter", "50% half"] == [
        line.split("progress", 1)[1].strip() for line in result.out.splitlines() if " progress " in line
    ]
    assert "cancelled" == _summary(result)["status"]
