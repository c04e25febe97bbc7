"""Tests for `fleet send` (fleet/cli/send.py, fleet/cli/job_lookup.py) on moto."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from background_job.jobs import REGISTRY
from common.job_ids import job_id_for_message
from fleet.cli.job_lookup import job_id_suffix

#: The registry is read, not copied: a job type added by following the README keeps this test true.
_KNOWN = ", ".join(sorted(REGISTRY))


def _the_sent_message(fleet):
    [message] = fleet.dlq_messages("triggers")
    return message


def _job_id_main_job_derives(message) -> str:
    return job_id_for_message(message["MessageId"], int(message["Attributes"]["SentTimestamp"]))


def test_send_from_flags_builds_a_valid_trigger_and_prints_the_message_id(fleet):
    """Flags become a trigger body; the MessageId SQS returned is printed."""
    result = fleet.run(
        "send", "--trigger", "orders", "--job-type", "diagnostic-sleep", "--correlation-id", "c-1", "--data", '{"n": 1}'
    )

    message = _the_sent_message(fleet)
    body = json.loads(message["Body"])
    assert 0 == result.code
    assert f"MessageId  {message['MessageId']}" == result.out.splitlines()[0]
    assert {"trigger": "orders", "jobType": "diagnostic-sleep", "correlationId": "c-1", "data": {"n": 1}} == {
        key: body[key] for key in ("trigger", "jobType", "correlationId", "data")
    }
    assert body["triggerBackgroundJob"] is True


def test_send_without_wait_gives_the_part_of_the_job_id_it_knows_and_no_guess(fleet):
    """The printed suffix is exactly the end of the jobId main_job will derive; no full jobId is invented."""
    result = fleet.run("send", "--trigger", "orders")

    job_id = _job_id_main_job_derives(_the_sent_message(fleet))
    assert f"It will end in ...{job_id[10:]}" in result.out
    assert job_id not in result.out


def test_a_malformed_trigger_is_refused_with_main_jobs_reason_and_not_sent(fleet, tmp_path):
    """A trigger main_job would quarantine is refused with the same reason, before sending."""
    path = tmp_path / "trigger.json"
    path.write_text('{"trigger": "orders", "triggerBackgroundJob": "yes"}')

    result = fleet.run("send", "--file", str(path))

    assert 2 == result.code
    assert (
        "fleet: trigger refused, not sent: field 'triggerBackgroundJob' must be a boolean, got string\n" == result.err
    )
    assert 0 == fleet.depth("triggers")


def test_send_reads_a_whole_trigger_from_stdin(fleet, monkeypatch):
    """--file - reads the trigger from stdin and sends it unchanged."""
    body = '{"trigger": "nightly", "data": {"region": "eu"}, "extra": true}'
    monkeypatch.setattr("sys.stdin", io.StringIO(body))

    result = fleet.run("send", "--file", "-")

    assert 0 == result.code
    assert body == _the_sent_message(fleet)["Body"]


def test_send_wait_finds_the_job_id_in_the_job_stream(fleet, now):
    """With --wait, the jobId is read back from the job stream whose name ends with the known suffix."""

    def background_job_starts() -> None:
        message = fleet.sqs.receive_message(
            QueueUrl=fleet.urls["triggers"], MessageSystemAttributeNames=["SentTimestamp"], VisibilityTimeout=60
        )["Messages"][0]
        fleet.job_event(_job_id_main_job_derives(message), "job.started", now, attempt=1)

    fleet.on_sleep = background_job_starts

    result = fleet.run("send", "--trigger", "orders", "--wait", "60")

    assert 0 == result.code
    assert 1 == len(fleet.sleeps)
    assert result.out.splitlines()[1].startswith("jobId      ")
    assert result.out.splitlines()[1].endswith("(from the job stream)")


def test_send_wait_finds_the_job_id_in_the_main_job_log(fleet):
    """With --wait, the trigger.received line carrying this MessageId gives the jobId."""
    derived: list[str] = []

    def main_job_receives() -> None:
        message = fleet.sqs.receive_message(
            QueueUrl=fleet.urls["triggers"], MessageSystemAttributeNames=["SentTimestamp"], VisibilityTimeout=60
        )["Messages"][0]
        job_id = _job_id_main_job_derives(message)
        fleet.main_job_event(job_id, "trigger.received", datetime.now(UTC), message_id=message["MessageId"])
        derived.append(job_id)

    fleet.on_sleep = main_job_receives

    result = fleet.run("send", "--trigger", "orders", "--wait", "60")

    assert 0 == result.code
    assert f"jobId      {derived[0]}  (from the main-job log)" == result.out.splitlines()[1]


def test_send_wait_gives_up_after_the_timeout(fleet):
    """If main_job never picks the trigger up, --wait ends with exit 1 and the known part of the jobId."""
    result = fleet.run("send", "--trigger", "orders", "--wait", "0.01")

    assert 1 == result.code
    assert "did not pick the trigger up within 0.01s" in result.err
    assert "It will end in ..." in result.out


def test_the_job_id_suffix_depends_on_the_message_id_only():
    """Two send times give jobIds that share the suffix computed from the MessageId."""
    first, second = job_id_for_message("m-1", 1_700_000_000_000), job_id_for_message("m-1", 1_800_000_000_000)

    assert first[10:] == second[10:] == job_id_suffix("m-1")
    assert first != second


def test_an_unknown_job_type_is_refused_with_the_known_ones_and_not_sent(fleet):
    """--job-type must name a registered job (background_job would quarantine it); exit 2, nothing sent."""
    result = fleet.run("send", "--trigger", "orders", "--job-type", "no-such-job")

    assert 2 == result.code
    assert f"fleet: trigger refused, not sent: unknown jobType 'no-such-job'; known: {_KNOWN}\n" == result.err
    assert 0 == fleet.depth("triggers")


def test_an_unknown_job_type_in_a_file_is_refused_too(fleet, tmp_path):
    """A whole trigger from --file is held to the same registry as --job-type."""
    path = tmp_path / "trigger.json"
    path.write_text('{"trigger": "orders", "jobType": "no-such-job"}')

    result = fleet.run("send", "--file", str(path))

    assert 2 == result.code
    assert "unknown jobType 'no-such-job'" in result.err
    assert 0 == fleet.depth("triggers")


def test_a_trigger_without_a_background_job_needs_no_known_job_type(fleet):
    """With triggerBackgroundJob false no job runs, so the jobType is not checked."""
    result = fleet.run("send", "--trigger", "orders", "--job-type", "no-such-job", "--no-background-job")

    assert 0 == result.code, result.err
    assert 1 == fleet.depth("triggers")


def test_send_usage_errors_exit_2(fleet):
    """Neither --trigger nor --file, or --data that is not JSON: exit status 2 and nothing sent."""
    missing = fleet.run("send")
    bad_data = fleet.run("send", "--trigger", "orders", "--data", "{nope")

    assert (2, "fleet: give --trigger NAME, or --file PATH (or --file - for stdin)\n") == (missing.code, missing.err)
    assert 2 == bad_data.code
    assert bad_data.err.startswith("fleet: --data is not valid JSON: ")
    assert 0 == fleet.depth("triggers")
