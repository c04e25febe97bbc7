"""Properties of the message validators, over inputs hypothesis generates (hostile ones included)."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.job_ids import is_valid_job_id, job_id_for_message
from common.messages import BackgroundJob, MalformedMessage, parse_background_job, parse_trigger

PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
NAMES = st.text(min_size=1, max_size=256).filter(lambda t: t.strip() and not _CONTROL.search(t))
JOB_TYPES = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
CORRELATION_IDS = st.from_regex(r"[A-Za-z0-9._:/@+=-]{1,128}", fullmatch=True)


def _outcome(parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except MalformedMessage as error:
        return error


@PROPERTIES
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_any_text_is_either_a_trigger_or_malformed_with_a_one_line_reason(body: str) -> None:
    """No input makes the validator raise anything but MalformedMessage, and reasons are safe to log."""
    outcome = _outcome(parse_trigger, body)

    if isinstance(outcome, MalformedMessage):
        assert outcome.reason
        assert not _CONTROL.search(outcome.reason)
        assert len(outcome.reason) <= 400


@PROPERTIES
@given(JSON_VALUES)
def test_any_json_document_is_either_a_trigger_or_malformed(document: Any) -> None:
    """Every JSON value, nested or not, is judged without crashing; accepted triggers have a clean name."""
    outcome = _outcome(parse_trigger, json.dumps(document))

    if not isinstance(outcome, MalformedMessage):
        assert isinstance(document, dict)
        assert not _CONTROL.search(outcome.trigger)
        assert outcome.raw == document


@PROPERTIES
@given(
    trigger=NAMES,
    job_type=st.none() | JOB_TYPES,
    correlation_id=st.none() | CORRELATION_IDS,
    data=st.none() | st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
    extra=st.dictionaries(st.sampled_from(["source", "priority", "tags"]), JSON_VALUES, max_size=2),
)
def test_valid_triggers_are_accepted_and_keep_every_field(
    trigger: str, job_type: str | None, correlation_id: str | None, data: dict[str, Any] | None, extra: dict[str, Any]
) -> None:
    """What the contract allows is accepted, and unknown fields pass through untouched."""
    document = {"trigger": trigger, **extra}
    document.update({k: v for k, v in (("jobType", job_type), ("correlationId", correlation_id)) if v is not None})
    if data is not None:
        document["data"] = data

    parsed = parse_trigger(json.dumps(document))

    assert (trigger, job_type or "main-job-processing", correlation_id) == (
        parsed.trigger,
        parsed.job_type,
        parsed.correlation_id,
    )
    assert document == parsed.raw


@PROPERTIES
@given(
    message_id=st.text(min_size=1, max_size=100),
    sent_ms=st.integers(min_value=0, max_value=2**48 - 1),
    job_type=JOB_TYPES,
    correlation_id=CORRELATION_IDS,
    trigger=NAMES,
)
def test_a_job_main_job_enqueues_round_trips_through_the_background_validator(
    message_id: str, sent_ms: int, job_type: str, correlation_id: str, trigger: str
) -> None:
    """main_job's body and attributes always pass background_job's checks, with an ASCII body."""
    job = BackgroundJob(
        job_id=job_id_for_message(message_id, sent_ms),
        job_type=job_type,
        correlation_id=correlation_id,
        trigger={"trigger": trigger},
        enqueued_at="2026-11-22T10:00:00.000Z",
    )
    attributes = {name: value["StringValue"] for name, value in job.message_attributes().items()}

    body = job.to_body()

    assert body.isascii()
    assert job == parse_background_job(body, attributes)
    assert job_id_for_message(message_id, sent_ms) == job.job_id


@PROPERTIES
@given(job_id=st.text(max_size=40))
def test_only_a_canonical_ulid_is_accepted_as_a_job_id(job_id: str) -> None:
    """Whatever jobId a message carries, an accepted one can never smuggle ':', '*', '/' or '..' into a stream name."""
    body = json.dumps(
        {
            "jobId": job_id,
            "jobType": "main-job-processing",
            "correlationId": "c",
            "trigger": {"trigger": "t"},
            "enqueuedAt": "2026-11-22T10:00:00.000Z",
        }
    )

    outcome = _outcome(parse_background_job, body, {})

    if not isinstance(outcome, MalformedMessage):
        assert is_valid_job_id(outcome.job_id)
        assert re.fullmatch(r"[0-9A-Z]{26}", outcome.job_id)


@PROPERTIES
@given(name=st.sampled_from(["jobId", "jobType", "correlationId"]), value=st.text(max_size=30))
def test_an_attribute_that_disagrees_with_the_body_is_refused(name: str, value: str) -> None:
    """Attributes may repeat the body, never contradict it."""
    job = BackgroundJob(job_id_for_message("m", 1), "main-job-processing", "corr", {"trigger": "t"}, "now")
    attributes = {n: v["StringValue"] for n, v in job.message_attributes().items()}
    agrees = attributes[name] == value
    attributes[name] = value

    outcome = _outcome(parse_background_job, job.to_body(), attributes)

    assert agrees == (not isinstance(outcome, MalformedMessage))
