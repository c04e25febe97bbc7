"""The message contracts: what users send, what main_job enqueues, and precise reasons for everything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from common.messages import (
    DEFAULT_JOB_TYPE,
    BackgroundJob,
    MalformedMessage,
    parse_background_job,
    parse_trigger,
)

ORIGINAL_EXAMPLE = (
    '{"trigger":"api_call","timestamp":"2026-11-22T10:00:00.000Z","triggerBackgroundJob":true,'
    '"data":{"userId":"test123","action":"process_data"}}'
)
JOB_ID = "01KANG3680B51DJKTJ921E1WMV"


def test_original_projects_trigger_is_accepted() -> None:
    """The example trigger from the original project parses with its defaults."""
    trigger = parse_trigger(ORIGINAL_EXAMPLE)

    assert "api_call" == trigger.trigger
    assert trigger.trigger_background_job
    assert DEFAULT_JOB_TYPE == trigger.job_type
    assert {"userId": "test123", "action": "process_data"} == trigger.data


def test_unknown_fields_are_kept_for_the_background_job() -> None:
    """Fields the fleet does not know are passed through untouched."""
    trigger = parse_trigger('{"trigger":"t","tenant":"acme","priority":3}')

    assert {"trigger": "t", "tenant": "acme", "priority": 3} == trigger.raw


def test_trigger_background_job_defaults_to_true() -> None:
    """A bare trigger asks for a background job, as in the original."""
    assert parse_trigger('{"trigger":"t"}').trigger_background_job


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "body is empty"),
        ("   ", "body is empty"),
        ("not json", "body is not valid JSON"),
        ("[1, 2]", "body must be a JSON object, got array"),
        ('"text"', "body must be a JSON object, got string"),
        ("42", "body must be a JSON object, got number"),
        ("null", "body must be a JSON object, got null"),
        ("{}", "field 'trigger' is required"),
        ('{"trigger": 7}', "field 'trigger' must be a string, got number"),
        ('{"trigger": "  "}', "field 'trigger' must not be blank"),
        ('{"trigger": "a\\nfake log line"}', "field 'trigger' contains control characters"),
        ('{"trigger": "t", "triggerBackgroundJob": "yes"}', "field 'triggerBackgroundJob' must be a boolean"),
        ('{"trigger": "t", "data": [1]}', "field 'data' must be an object, got array"),
        ('{"trigger": "t", "jobType": "Bad Type"}', "field 'jobType' must match"),
        ('{"trigger": "t", "correlationId": "has space"}', "field 'correlationId' must match"),
        ('{"trigger": "t", "timestamp": 1700000000}', "field 'timestamp' must be a string, got number"),
        ('{"trigger": "t", "n": NaN}', "NaN is not a JSON number"),
        ('{"trigger": "t", "n": -Infinity}', "-Infinity is not a JSON number"),
        ('{"trigger": "t", "n": 1e400}', "a number is too large to represent"),
        ('{"trigger": "t", "n": 1' + "0" * 5000 + "}", "body is not valid JSON"),
        ('{"trigger": "\\ud800"}', "unpaired UTF-16 surrogate"),
        ("[" * 10_000 + "]" * 10_000, "nested deeper than 64 levels"),
        ('{"trigger": "t", "schedule": "nightly"}', "field 'schedule': must be an object"),
        (
            '{"trigger": "t", "schedule": {"name": "Bad Name", "scheduledTime": "2026-12-04T14:00:00Z"}}',
            "field 'schedule': schedule name must match",
        ),
        (
            '{"trigger": "t", "schedule": {"name": "nightly", "scheduledTime": "<aws.scheduler.scheduled-time>"}}',
            "unsubstituted <aws.scheduler.scheduled-time>",
        ),
        (
            '{"trigger": "t", "schedule": {"name": "nightly", "scheduledTime": "2026-12-04 14:00"}}',
            "scheduledTime must be a UTC time",
        ),
        (
            '{"trigger": "t", "schedule": {"name": "nightly", "scheduledTime": "2026-02-30T14:00:00Z"}}',
            "is not a real time",
        ),
        ('{"trigger": "t", "data": ' + '{"a":' * 70 + "1" + "}" * 70 + "}", "nested deeper than 64 levels"),
    ],
)
def test_malformed_trigger_gets_a_precise_reason(body: str, reason: str) -> None:
    """Each kind of broken trigger is refused with a reason that names the problem."""
    with pytest.raises(MalformedMessage) as caught:
        parse_trigger(body)

    assert reason in caught.value.reason


def test_scheduled_trigger_carries_its_tick() -> None:
    """The schedule name and Scheduler's scheduled time are parsed into the trigger's tick."""
    body = '{"trigger": "nightly", "schedule": {"name": "nightly-report", "scheduledTime": "2026-12-04T02:00:00Z"}}'

    tick = parse_trigger(body).schedule

    assert tick is not None
    assert ("nightly-report", datetime(2026, 12, 4, 2, 0, tzinfo=UTC)) == (tick.name, tick.scheduled_time)


def _background(**overrides: object) -> str:
    document = {
        "jobId": JOB_ID,
        "jobType": DEFAULT_JOB_TYPE,
        "correlationId": "corr-1",
        "trigger": {"trigger": "t"},
        "enqueuedAt": "2026-11-22T10:00:00.000+00:00",
        **overrides,
    }
    return json.dumps(document)


def test_background_job_round_trips() -> None:
    """What main_job writes, background_job reads back unchanged, attributes included."""
    job = BackgroundJob(JOB_ID, DEFAULT_JOB_TYPE, "corr-1", {"trigger": "t", "x": 1}, "2026-11-22T10:00:00+00:00")
    attributes = {name: value["StringValue"] for name, value in job.message_attributes().items()}

    assert job == parse_background_job(job.to_body(), attributes)
    assert {"jobId": JOB_ID, "jobType": DEFAULT_JOB_TYPE, "correlationId": "corr-1"} == attributes


@pytest.mark.parametrize(
    ("body", "attributes", "reason"),
    [
        (_background(jobId="not-a-ulid"), {}, "field 'jobId' must be a 26-character upper-case ULID"),
        (_background(jobId="01KANG3680B51DJKTJ921E1W:V"), {}, "field 'jobId' must be a 26-character"),
        (_background(jobId="../../etc/passwd"), {}, "field 'jobId' must be a 26-character"),
        (_background(trigger="t"), {}, "field 'trigger' must be an object, got string"),
        (_background(jobType=None), {}, "field 'jobType' is required"),
        (
            _background(),
            {"jobId": "01KANG3680B51DJKTJ921E1WMW"},
            "message attribute 'jobId' disagrees with the body",
        ),
        (
            _background(),
            {"jobType": "diagnostic-fail"},
            "message attribute 'jobType' disagrees with the body",
        ),
    ],
)
def test_malformed_background_job_gets_a_precise_reason(body: str, attributes: dict[str, str], reason: str) -> None:
    """A background message that is not what main_job writes is refused, including spoofed attributes."""
    with pytest.raises(MalformedMessage) as caught:
        parse_background_job(body, attributes)

    assert reason in caught.value.reason
