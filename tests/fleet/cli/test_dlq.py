"""Tests for `fleet dlq peek` (fleet/cli/dlq.py) on moto."""

from __future__ import annotations

import json

from .dlq_helpers import exhaust, quarantine


def _peek(fleet, *argv: str) -> list[dict]:
    result = fleet.run("dlq", "peek", *argv, "--json")
    assert 0 == result.code, result.err
    return json.loads(result.out)


def test_peek_shows_the_quarantine_reason_and_leaves_messages_in_place(fleet):
    """A quarantined message shows its reason and receive count, and is visible again afterwards."""
    quarantine(fleet, "triggers", "{not json", "body is not valid JSON: Expecting property name")

    [message] = _peek(fleet, "triggers")

    assert "body is not valid JSON: Expecting property name" == message["reason"]
    assert "quarantined" == message["how"]
    assert 1 == message["receives"]
    assert message["first_seen"].endswith("Z")
    assert 1 == fleet.depth("triggers-dlq")
    assert [message["message_id"]] == [m["MessageId"] for m in fleet.dlq_messages("triggers-dlq")]


def test_peek_says_when_the_redrive_policy_moved_a_message(fleet):
    """A message SQS moved after maxReceiveCount has no reason, and says how it got there."""
    exhaust(fleet, "background", '{"jobId": "x"}')

    [message] = _peek(fleet, "background-dlq")

    assert message["reason"] is None
    assert "redrive policy" == message["how"]
    assert 1 == message["receives"]


def test_peek_pages_through_more_than_ten_messages_each_once(fleet):
    """--max beyond one receive batch shows distinct messages, then all are visible again."""
    for index in range(25):
        quarantine(fleet, "triggers", f'{{"n": {index}}}', "field 'trigger' is required")

    messages = _peek(fleet, "triggers", "--max", "25")

    assert 25 == len({message["message_id"] for message in messages})
    assert 25 == len(fleet.dlq_messages("triggers-dlq"))


def test_peek_stops_at_max(fleet):
    """--max caps how many messages are shown."""
    for index in range(5):
        quarantine(fleet, "triggers", f'{{"n": {index}}}', "field 'trigger' is required")

    assert 2 == len(_peek(fleet, "triggers", "--max", "2"))


def test_peek_says_how_many_more_the_queue_holds(fleet):
    """12 messages and the default --max 10: the note says 10 shown of about 12, and how to see them."""
    for index in range(12):
        quarantine(fleet, "triggers", f'{{"n": {index}}}', "field 'trigger' is required")

    result = fleet.run("dlq", "peek", "triggers")

    assert 0 == result.code
    assert "fleet: note: 10 message(s) shown; the queue holds about 12: --max 12 shows more\n" == result.err


def test_peek_adds_no_note_when_it_showed_everything(fleet):
    """A peek that saw the whole queue says nothing more."""
    for index in range(3):
        quarantine(fleet, "triggers", f'{{"n": {index}}}', "field 'trigger' is required")

    result = fleet.run("dlq", "peek", "triggers")

    assert (0, "") == (result.code, result.err)


def test_peek_filters_by_attribute_and_body(fleet):
    """--filter NAME~TEXT and body~TEXT select messages without consuming the others."""
    quarantine(fleet, "triggers", '{"trigger": 1}', "field 'trigger' must be a string, got number")
    quarantine(fleet, "triggers", '{"data": []}', "field 'trigger' is required")

    by_reason = _peek(fleet, "triggers", "--filter", "QuarantineReason~must be a string")
    by_body = _peek(fleet, "triggers", "--filter", "body~data")

    assert ['{"trigger": 1}'] == [message["body"] for message in by_reason]
    assert ['{"data": []}'] == [message["body"] for message in by_body]
    assert 2 == len(fleet.dlq_messages("triggers-dlq"))


def test_peek_table_lists_reason_and_body(fleet):
    """The plain-text view has one row per message with its reason and a body preview."""
    quarantine(fleet, "triggers", '{"trigger": ""}', "field 'trigger' must not be blank")

    result = fleet.run("dlq", "peek", "triggers")

    header, row = result.out.splitlines()
    assert header.split()[:4] == ["MESSAGE", "ID", "RECEIVES", "REDRIVES"]
    assert "field 'trigger' must not be blank" in row
    assert row.endswith('{"trigger": ""}')


def test_a_bad_filter_is_explained(fleet):
    """A filter without = or ~ is refused with the accepted forms."""
    result = fleet.run("dlq", "peek", "triggers", "--filter", "reason")

    assert 1 == result.code
    assert "expected NAME=VALUE or NAME~TEXT" in result.err
