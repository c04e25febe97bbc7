"""Every trigger the trigger queue accepts fits in its background message (common/messages.py's size limits)."""

from __future__ import annotations

import json

import pytest

from common.messages import (
    ENVELOPE_RESERVE_BYTES,
    MAX_NESTING_DEPTH,
    MAX_TRIGGER_BYTES,
    QUEUE_MAX_MESSAGE_BYTES,
    BackgroundJob,
    MalformedMessage,
    parse_background_job,
    parse_trigger,
)
from common.sqs.send_batch import entry_size

JOB_ID = "01KANG3680B51DJKTJ921E1WMV"
#: The longest values the contract allows: jobType 64 characters, correlationId 128.
LONGEST_JOB_TYPE = "j" * 64
LONGEST_CORRELATION_ID = "c" * 128
ENQUEUED_AT = "2026-12-04T17:00:00.000+00:00"


def _trigger_of_size(size: int, filler: str) -> str:
    """A valid trigger body of exactly ``size`` UTF-8 bytes, its data padded with ``filler`` (JSON text)."""
    body = json.dumps({"trigger": "big", "jobType": LONGEST_JOB_TYPE, "data": {"blob": ""}}, ensure_ascii=False)
    room = size - len(body.encode())
    pad = filler * (room // len(filler.encode())) + "x" * (room % len(filler.encode()))
    return body.replace('"blob": ""', f'"blob": "{pad}"')


def _background_entry(trigger_body: str) -> tuple[BackgroundJob, int]:
    trigger = parse_trigger(trigger_body)
    job = BackgroundJob(JOB_ID, trigger.job_type, LONGEST_CORRELATION_ID, trigger.raw, ENQUEUED_AT, trigger.text)
    size = entry_size({"Id": "0", "MessageBody": job.to_body(), "MessageAttributes": job.message_attributes()})
    return job, size


@pytest.mark.parametrize(
    "filler",
    ["x", "é", "中", "😀", '\\"', "\\\\", "\\u00e9", "\\t"],
    ids=["ascii", "two-byte", "three-byte", "astral", "escaped-quote", "escaped-backslash", "escaped-e", "escaped-tab"],
)
def test_a_trigger_at_the_trigger_queues_limit_fits_the_background_queue(filler: str) -> None:
    """Whatever the trigger holds (escapes used to grow non-ASCII text up to 2x), its background message fits."""
    body = _trigger_of_size(MAX_TRIGGER_BYTES, filler)
    assert MAX_TRIGGER_BYTES == len(body.encode())

    _, size = _background_entry(body)

    assert size <= QUEUE_MAX_MESSAGE_BYTES


def test_the_envelope_stays_inside_its_reserve() -> None:
    """The background message is the trigger's bytes plus at most the reserve, for the longest envelope."""
    body = _trigger_of_size(1000, "é")

    _, size = _background_entry(body)

    assert size - len(body.encode()) <= ENVELOPE_RESERVE_BYTES


def test_the_background_body_carries_the_trigger_text_verbatim_and_decodes_to_it() -> None:
    """Numbers, escapes and spacing as the sender wrote them; the worker reads back the same document."""
    text = ' {"trigger": "t", "data": {"n": 1e15, "s": "\\u00e9\\/", "k": "é"}}\n'
    job, _ = _background_entry(text)
    attributes = {name: value["StringValue"] for name, value in job.message_attributes().items()}

    assert text in job.to_body()
    assert parse_trigger(text).raw == parse_background_job(job.to_body(), attributes).trigger


def test_a_trigger_at_the_deepest_nesting_main_job_accepts_still_parses_as_a_background_job() -> None:
    """The envelope adds one level: the background message must not refuse what the trigger contract allows."""
    leaf: object = 0  # at depth MAX_NESTING_DEPTH: the document is 1, data 2, each object inside one more
    for _ in range(MAX_NESTING_DEPTH - 2):
        leaf = {"a": leaf}
    body = json.dumps({"trigger": "deep", "data": leaf})
    with pytest.raises(MalformedMessage):  # one level more is refused: this is the deepest trigger
        parse_trigger(json.dumps({"trigger": "deep", "data": {"a": leaf}}))
    job, _ = _background_entry(body)
    attributes = {name: value["StringValue"] for name, value in job.message_attributes().items()}

    assert parse_trigger(body).raw == parse_background_job(job.to_body(), attributes).trigger
