"""Tests for `fleet redrive` (fleet/cli/redrive.py, fleet/cli/journal.py) on moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.cli.journal import Journal
from fleet.cli.queues import resolve
from fleet.cli.redrive import Redrive, RedriveOptions

from .dlq_helpers import exhaust, fail_once_more, quarantine


def _attributes(message) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}


def test_redrive_moves_messages_back_with_a_redrive_counter(fleet):
    """Each message goes back to its source queue, body and attributes kept, RedriveCount 1."""
    exhaust(fleet, "background", '{"jobId": "a"}', jobId="a")
    exhaust(fleet, "background", '{"jobId": "b"}', jobId="b")

    result = fleet.run("redrive", "background")

    assert 0 == result.code, result.err
    assert result.out.startswith(
        f"moved 2 message(s) from {fleet.names.background_dlq} to {fleet.names.background_queue}"
    )
    moved = fleet.dlq_messages("background")
    assert {'{"jobId": "a"}', '{"jobId": "b"}'} == {message["Body"] for message in moved}
    assert {("a", "1"), ("b", "1")} == {(_attributes(m)["jobId"], _attributes(m)["RedriveCount"]) for m in moved}
    assert 0 == fleet.depth("background-dlq")


def test_redrive_stops_at_the_loop_limit(fleet):
    """A message that keeps failing is redriven three times, then reported and left in the DLQ."""
    exhaust(fleet, "triggers", '{"trigger": "poison"}')
    for expected_count in ("1", "2", "3"):
        assert 0 == fleet.run("redrive", "triggers").code
        fail_once_more(fleet, "triggers")
        [parked] = fleet.sqs.receive_message(
            QueueUrl=fleet.urls["triggers-dlq"], MessageAttributeNames=["All"], VisibilityTimeout=0
        )["Messages"]
        assert expected_count == _attributes(parked)["RedriveCount"]

    result = fleet.run("redrive", "triggers")

    assert 0 == result.code
    assert "moved 0 message(s)" in result.out
    assert "left 1 message(s) at the loop limit (RedriveCount reached):" in result.out
    assert "redrives=3" in result.out
    assert 1 == fleet.depth("triggers-dlq")
    assert 0 == fleet.depth("triggers")


def test_the_loop_limit_is_configurable(fleet):
    """--loop-limit 1 leaves a message that has been redriven once."""
    exhaust(fleet, "triggers", '{"trigger": "t"}')
    assert 0 == fleet.run("redrive", "triggers").code
    fail_once_more(fleet, "triggers")

    result = fleet.run("redrive", "triggers", "--loop-limit", "1")

    assert "left 1 message(s) at the loop limit" in result.out
    assert 1 == fleet.depth("triggers-dlq")


def test_a_sender_set_redrive_count_does_not_count(fleet):
    """RedriveCount=99 set by the sender (carried by the redrive policy) is not the fleet's: it moves, as 1."""
    exhaust(fleet, "triggers", '{"trigger": "t"}', RedriveCount="99")

    result = fleet.run("redrive", "triggers")

    assert "moved 1 message(s)" in result.out
    [copy] = fleet.dlq_messages("triggers")
    assert "1" == _attributes(copy)["RedriveCount"]


def test_a_quarantined_trigger_with_a_forged_redrive_count_is_redriven_when_forced(fleet):
    """A sender's RedriveCount=99 on a malformed trigger neither reaches its DLQ copy nor blocks --force."""
    quarantine(fleet, "triggers", "{oops", "body is not valid JSON", RedriveCount="99", RedrivenFrom="x")

    result = fleet.run("redrive", "triggers", "--force")

    assert "moved 1 message(s)" in result.out
    assert "loop limit" not in result.out
    [copy] = fleet.dlq_messages("triggers")
    assert "1" == _attributes(copy)["RedriveCount"]


def test_the_loop_count_survives_re_quarantine(fleet):
    """A forced copy quarantined again is known by its OriginalMessageId: the count goes on, to the limit."""
    quarantine(fleet, "triggers", "{oops", "body is not valid JSON")
    for expected_count in ("1", "2", "3"):
        assert "moved 1 message(s)" in fleet.run("redrive", "triggers", "--force").out
        [copy] = fleet.dlq_messages("triggers")
        assert expected_count == _attributes(copy)["RedriveCount"]
        fleet.sqs.delete_message(QueueUrl=fleet.urls["triggers"], ReceiptHandle=copy["ReceiptHandle"])
        quarantine(fleet, "triggers", copy["Body"], "body is not valid JSON", original_message_id=copy["MessageId"])

    result = fleet.run("redrive", "triggers", "--force")

    assert "left 1 message(s) at the loop limit (RedriveCount reached):" in result.out
    assert "redrives=3" in result.out
    assert 1 == fleet.depth("triggers-dlq")


def test_quarantined_messages_stay_unless_forced(fleet):
    """A malformed message is reported and left; with --force it goes back without its quarantine attributes."""
    quarantine(fleet, "triggers", "{oops", "body is not valid JSON", correlationId="c-9")

    refused = fleet.run("redrive", "triggers")
    forced = fleet.run("redrive", "triggers", "--force")

    assert "left 1 quarantined message(s) (malformed; --force to redrive):" in refused.out
    assert "body is not valid JSON" in refused.out
    assert "moved 1 message(s)" in forced.out
    [copy] = fleet.dlq_messages("triggers")
    assert {"correlationId": "c-9", "RedriveCount": "1"} == {
        k: v for k, v in _attributes(copy).items() if k != "RedrivenFrom"
    }


def test_dry_run_changes_nothing(fleet):
    """--dry-run lists what would move, and both queues are as they were."""
    exhaust(fleet, "triggers", '{"trigger": "a"}')
    quarantine(fleet, "triggers", "{", "body is not valid JSON")

    result = fleet.run("redrive", "triggers", "--dry-run")

    assert 0 == result.code
    assert "would move 1 message(s)" in result.out
    assert "(dry run)" in result.out
    assert "left 1 quarantined message(s)" in result.out
    assert 2 == fleet.depth("triggers-dlq")
    assert 0 == fleet.depth("triggers")


def test_filter_and_max_select_what_moves(fleet):
    """--filter picks matching messages; --max caps how many move; the rest stay."""
    for name in ("a", "b", "c"):
        exhaust(fleet, "triggers", f'{{"trigger": "orders-{name}"}}')
    exhaust(fleet, "triggers", '{"trigger": "billing"}')

    result = fleet.run("redrive", "triggers", "--filter", "body~orders", "--max", "2")

    assert "moved 2 message(s)" in result.out
    assert 2 == len([m for m in fleet.dlq_messages("triggers") if "orders" in m["Body"]])
    assert 2 == fleet.depth("triggers-dlq")


def test_redrive_reports_progress_on_stderr(fleet):
    """Long runs print a progress line every --progress-every messages."""
    for index in range(25):
        fleet.sqs.send_message(QueueUrl=fleet.urls["triggers-dlq"], MessageBody=f'{{"trigger": "t{index}"}}')

    result = fleet.run("redrive", "triggers", "--progress-every", "10")

    assert "moved 25 message(s)" in result.out
    assert ["redrive: examined 10, moved 10", "redrive: examined 20, moved 20"] == result.err.splitlines()[:2]


class Crash(Exception):
    """The process dies here: nothing after this point reaches SQS."""


def test_a_redrive_interrupted_between_send_and_delete_loses_and_duplicates_nothing(fleet, tmp_path):
    """Copies are sent, the process dies before deleting; the next run only deletes the originals."""
    bodies = {f'{{"trigger": "t{index}"}}' for index in range(12)}
    for body in bodies:
        fleet.sqs.send_message(QueueUrl=fleet.urls["triggers-dlq"], MessageBody=body)
    journal_path = tmp_path / "journal.jsonl"

    def dead(**_: object) -> None:
        raise Crash

    fleet.sqs.meta.events.register("before-call.sqs.DeleteMessageBatch", dead, unique_id="crash-delete")
    fleet.sqs.meta.events.register("before-call.sqs.ChangeMessageVisibilityBatch", dead, unique_id="crash-release")
    with pytest.raises(Crash):
        _redrive(fleet, journal_path, visibility_seconds=1).run()
    fleet.sqs.meta.events.unregister("before-call.sqs.DeleteMessageBatch", unique_id="crash-delete")
    fleet.sqs.meta.events.unregister("before-call.sqs.ChangeMessageVisibilityBatch", unique_id="crash-release")
    assert 10 == fleet.depth("triggers")  # the first batch was sent; the crash came at its delete

    # The originals reappear when their visibility timeout ends; the rerun long-polls until they do.
    report = _redrive(fleet, journal_path, visibility_seconds=60, wait_seconds=3).run()

    assert 10 == len(report.completed_earlier)
    assert 2 == len(report.moved)
    assert 0 == fleet.depth("triggers-dlq")
    redriven = [message["Body"] for message in fleet.dlq_messages("triggers")]
    assert sorted(bodies) == sorted(redriven)


def test_a_copy_whose_send_outcome_is_unknown_is_sent_again(fleet, tmp_path):
    """Journalled as sending but never as sent: the message is sent again rather than risk losing it."""
    message_id = fleet.sqs.send_message(QueueUrl=fleet.urls["triggers-dlq"], MessageBody='{"trigger": "t"}')[
        "MessageId"
    ]
    journal_path = tmp_path / "journal.jsonl"
    Journal(journal_path).record_sending(fleet.urls["triggers-dlq"], [message_id])

    report = _redrive(fleet, journal_path).run()

    assert [message_id] == [original for original, _ in report.moved]
    assert 1 == fleet.depth("triggers")


def test_the_journal_forgets_entries_older_than_sqs_retention(tmp_path):
    """Entries past 14 days are dropped on load; newer ones are kept."""
    path = tmp_path / "journal.jsonl"
    path.write_text(
        '{"at": "2020-01-01T00:00:00+00:00", "message_id": "old", "state": "sent"}\n'
        '{"at": "2999-01-01T00:00:00+00:00", "message_id": "new", "state": "sent"}\n'
        "{cut short\n"
    )

    journal = Journal(path)

    assert (None, "sent") == (journal.state("old"), journal.state("new"))
    assert 1 == len(path.read_text().splitlines())


def _redrive(fleet, journal_path: Path, *, visibility_seconds: int = 60, wait_seconds: int = 0) -> Redrive:
    return Redrive(
        sqs=fleet.sqs,
        dlq=resolve(fleet.sqs, fleet.names, "triggers-dlq"),
        target=resolve(fleet.sqs, fleet.names, "triggers"),
        journal=Journal(journal_path),
        options=RedriveOptions(limit=1000, visibility_seconds=visibility_seconds, wait_seconds=wait_seconds),
    )


def test_ctrl_c_mid_run_puts_unsent_messages_back_at_once(fleet, tmp_path):
    """An interrupt before the send leaves every message in the DLQ and visible again immediately."""
    for index in range(3):
        fleet.sqs.send_message(QueueUrl=fleet.urls["triggers-dlq"], MessageBody=f'{{"trigger": "t{index}"}}')

    def interrupt(**_: object) -> None:
        raise KeyboardInterrupt

    fleet.sqs.meta.events.register("before-call.sqs.SendMessageBatch", interrupt, unique_id="ctrl-c")
    with pytest.raises(KeyboardInterrupt):
        _redrive(fleet, tmp_path / "journal.jsonl").run()
    fleet.sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", unique_id="ctrl-c")

    assert 3 == len(fleet.dlq_messages("triggers-dlq"))
    assert 0 == fleet.depth("triggers")


def test_a_message_with_no_room_for_the_counter_is_left(fleet):
    """Ten sender attributes leave no room for RedriveCount: the message stays and is reported."""
    attributes = {f"a{index}": {"DataType": "String", "StringValue": "v"} for index in range(10)}
    fleet.sqs.send_message(QueueUrl=fleet.urls["triggers-dlq"], MessageBody="{}", MessageAttributes=attributes)

    result = fleet.run("redrive", "triggers")

    assert "left 1 message(s) with no room for RedriveCount (10 attributes)" in result.out
    assert 1 == fleet.depth("triggers-dlq")


def test_redrive_to_an_unpaired_dlq_is_refused(fleet):
    """A queue that no source queue names as its DLQ cannot be redriven, and the reason says so."""
    fleet.sqs.create_queue(QueueName="stray-dlq")

    result = fleet.run("redrive", "stray-dlq")

    assert 1 == result.code
    assert "fleet: cannot tell where stray-dlq redrives to: 0 source queues name it as their DLQ\n" == result.err
