"""Hostile and broken messages for both queues, each with the exact reason it must be quarantined for.

``FORGED`` marks text that tries to pass for a log line of its own: no worker line may ever contain it
as a field value of an event it did not log (see the bad-input scenario).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from background_job.jobs import REGISTRY
from common.job_ids import job_id_for_message
from common.messages import MAX_NESTING_DEPTH

FORGED = "FORGED-0000000000"
#: A line an attacker would like the log to show; newline-prefixed so that naive logging splits it off.
INJECTION = "\n" + json.dumps({"event": "job.succeeded", "job_id": FORGED, "level": "info"}) + "\n"
_JOB_TYPE_RULE = "must match [a-z0-9][a-z0-9._-]{0,63} (lower-case letters, digits, '.', '_', '-')"
_CORRELATION_RULE = "must match [A-Za-z0-9._:/@+=-]{1,128} (letters, digits, ._:/@+=-)"
_NOT_A_ULID = "field 'jobId' must be a 26-character upper-case ULID"
_DEEP = "[" * 10_000 + "]" * 10_000


@dataclass(frozen=True)
class Case:
    kind: str
    body: str
    reason: str
    attributes: dict[str, str] = field(default_factory=dict)
    #: A prefix is enough where the reason quotes a number the emulator or Python computes.
    prefix_only: bool = False
    #: Where it is parked: its own queue's DLQ, or the background DLQ for a trigger main_job cannot judge.
    parked_in: str = ""

    def matches(self, reason: str) -> bool:
        return reason.startswith(self.reason) if self.prefix_only else reason == self.reason


def _trigger(**fields: object) -> str:
    return json.dumps({"trigger": "hostile", **fields})


TRIGGER_CASES = [
    Case("not JSON", "hello, world", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    Case("whitespace-only body", " \n\t ", "body is empty"),
    Case("truncated JSON", '{"trigger": "x"', "body is not valid JSON: Expecting ',' delimiter", prefix_only=True),
    Case("byte-order mark", '\ufeff{"trigger": "x"}', "body is not valid JSON: Unexpected UTF-8 BOM", prefix_only=True),
    Case("JSON string", '"trigger"', "body must be a JSON object, got string"),
    Case("JSON number", "42", "body must be a JSON object, got number"),
    Case("JSON null", "null", "body must be a JSON object, got null"),
    Case("JSON boolean", "true", "body must be a JSON object, got boolean"),
    Case("JSON array", '[{"trigger": "x"}]', "body must be a JSON object, got array"),
    Case("empty object", "{}", "field 'trigger' is required"),
    Case("trigger is a number", '{"trigger": 42}', "field 'trigger' must be a string, got number"),
    Case("trigger is an object", '{"trigger": {"event": "x"}}', "field 'trigger' must be a string, got object"),
    Case("blank trigger", '{"trigger": "   "}', "field 'trigger' must not be blank"),
    Case(
        "triggerBackgroundJob is a string",
        _trigger(triggerBackgroundJob="yes"),
        "field 'triggerBackgroundJob' must be a boolean, got string",
    ),
    Case("data is an array", _trigger(data=[1, 2]), "field 'data' must be an object, got array"),
    Case(
        "10,000-deep nesting",
        '{"trigger": "x", "data": {"deep": ' + _DEEP + "}}",
        f"body is nested deeper than {MAX_NESTING_DEPTH} levels",
    ),
    Case(
        "100-deep nesting",
        '{"trigger": "x", "data": ' + "[" * 100 + "]" * 100 + "}",
        f"body is nested deeper than {MAX_NESTING_DEPTH} levels",
    ),
    Case(
        "float overflow",
        '{"trigger": "x", "data": {"n": 1e400}}',
        "body is not valid JSON: a number is too large to represent",
    ),
    Case(
        "integer past a double",
        '{"trigger": "x", "data": {"n": 1' + "0" * 400 + "}}",
        "body is not valid JSON: a number is too large to represent",
    ),
    Case(
        "integer of 5,000 digits",
        '{"trigger": "x", "data": {"n": 1' + "0" * 5000 + "}}",
        "body is not valid JSON: a number is too large to represent",
    ),
    Case("NaN", '{"trigger": "x", "data": {"n": NaN}}', "body is not valid JSON: NaN is not a JSON number"),
    Case(
        "Infinity", '{"trigger": "x", "data": {"n": Infinity}}', "body is not valid JSON: Infinity is not a JSON number"
    ),
    Case(
        "-Infinity",
        '{"trigger": "x", "data": {"n": -Infinity}}',
        "body is not valid JSON: -Infinity is not a JSON number",
    ),
    Case(
        "unpaired surrogate in data",
        '{"trigger": "x", "data": {"s": "\\ud800"}}',
        "string at $.data.s contains an unpaired UTF-16 surrogate",
    ),
    Case(
        "unpaired surrogate in a key",
        '{"trigger": "x", "data": {"\\udfff": 1}}',
        "a key in $.data contains an unpaired UTF-16 surrogate",
    ),
    Case(
        "log injection in trigger",
        json.dumps({"trigger": "x" + INJECTION}),
        "field 'trigger' contains control characters",
    ),
    Case("NUL in trigger", json.dumps({"trigger": "a\u0000b"}), "field 'trigger' contains control characters"),
    Case(
        "ANSI escape in trigger",
        json.dumps({"trigger": "\u001b[31mred"}),
        "field 'trigger' contains control characters",
    ),
    Case("C1 NEL in trigger", json.dumps({"trigger": "a\u0085b"}), "field 'trigger' contains control characters"),
    Case(
        "line separator in trigger", json.dumps({"trigger": "a\u2028b"}), "field 'trigger' contains control characters"
    ),
    Case(
        "log injection in timestamp",
        _trigger(timestamp="2026" + INJECTION),
        "field 'timestamp' contains control characters",
    ),
    Case("log injection in jobType", _trigger(jobType="x" + INJECTION), f"field 'jobType' {_JOB_TYPE_RULE}"),
    Case(
        "log injection in correlationId",
        _trigger(correlationId="c" + INJECTION),
        f"field 'correlationId' {_CORRELATION_RULE}",
    ),
    Case("jobType is a number", _trigger(jobType=3), "field 'jobType' must be a string, got number"),
    Case("trigger name too long", json.dumps({"trigger": "t" * 300}), "field 'trigger' is longer than 256 characters"),
    Case(
        "unknown jobType",
        _trigger(jobType="no-such-job", data={"probe": "unknown-job-type"}),
        f"unknown jobType 'no-such-job'; known: {', '.join(sorted(REGISTRY))}",
        parked_in="background_dlq",
    ),
]

#: Not malformed by the trigger contract, but hostile: they must run under a jobId derived from the
#: MessageId, never under the one they carry (see the README's message contract).
NEUTRALIZED_TRIGGERS = [
    ("jobId field with a path", json.dumps({"trigger": "neutral", "jobId": "../../etc/passwd"}), {}),
    ("jobId field with ':' and '*'", json.dumps({"trigger": "neutral", "jobId": "a:b*c"}), {}),
    (
        "spoofed jobId and correlationId attributes",
        json.dumps({"trigger": "neutral", "correlationId": "corr-neutral"}),
        {"jobId": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "correlationId": "someone-else"},
    ),
    ("log injection in data", json.dumps({"trigger": "neutral", "data": {"userId": "u" + INJECTION}}), {}),
]


def background_body(**overrides: object) -> str:
    """A valid background job body, with fields replaced or removed (a value of ``None`` drops the field)."""
    document: dict[str, object] = {
        "jobId": job_id_for_message("corpus", int(datetime.now(UTC).timestamp() * 1000)),
        "jobType": "main-job-processing",
        "correlationId": "corr-corpus",
        "trigger": {"trigger": "hostile", "data": {}},
        "enqueuedAt": "2026-11-22T10:00:00.000Z",
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not None})


_ULID = json.loads(background_body())["jobId"]

BACKGROUND_CASES = [
    Case("not JSON", "<xml/>", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    Case("whitespace-only body", "\n", "body is empty"),
    Case("JSON array", "[]", "body must be a JSON object, got array"),
    Case("JSON scalar", "3.5", "body must be a JSON object, got number"),
    Case("missing jobId", background_body(jobId=None), _NOT_A_ULID),
    Case("jobId is a number", background_body(jobId=12345), _NOT_A_ULID),
    Case("jobId is not a ULID", background_body(jobId="not-a-ulid"), _NOT_A_ULID),
    Case("lower-case ULID", background_body(jobId=_ULID.lower()), _NOT_A_ULID),
    Case("jobId with ':'", background_body(jobId=_ULID[:25] + ":"), _NOT_A_ULID),
    Case("jobId with '*'", background_body(jobId="*" * 26), _NOT_A_ULID),
    Case("jobId with '/'", background_body(jobId=_ULID[:12] + "/" + _ULID[13:]), _NOT_A_ULID),
    Case("jobId with '..'", background_body(jobId="../../" + _ULID[6:]), _NOT_A_ULID),
    Case("jobId with a newline", background_body(jobId=_ULID[:25] + "\n"), _NOT_A_ULID),
    Case(
        "unknown jobType",
        background_body(jobType="no-such-job"),
        "unknown jobType 'no-such-job'; known: ",
        prefix_only=True,
    ),
    Case("jobType with '/'", background_body(jobType="../main"), f"field 'jobType' {_JOB_TYPE_RULE}"),
    Case("missing correlationId", background_body(correlationId=None), "field 'correlationId' is required"),
    Case(
        "log injection in correlationId",
        background_body(correlationId="c" + INJECTION),
        f"field 'correlationId' {_CORRELATION_RULE}",
    ),
    Case(
        "log injection in enqueuedAt",
        background_body(enqueuedAt="t" + INJECTION),
        "field 'enqueuedAt' contains control characters",
    ),
    Case("trigger is a string", background_body(trigger="x"), "field 'trigger' must be an object, got string"),
    Case(
        "log injection in trigger.trigger",
        background_body(trigger={"trigger": "x" + INJECTION}),
        "field 'trigger.trigger' contains control characters",
    ),
    Case(
        "NaN in trigger.data",
        background_body().replace('"data": {}', '"data": {"n": NaN}'),
        "body is not valid JSON: NaN is not a JSON number",
    ),
    Case(
        "10,000-deep nesting",
        background_body().replace('"data": {}', '"data": ' + _DEEP),
        # The envelope adds a level to the deepest trigger main_job accepts (64).
        f"body is nested deeper than {MAX_NESTING_DEPTH + 1} levels",
    ),
    Case(
        "spoofed jobId attribute",
        background_body(),
        "message attribute 'jobId' disagrees with the body",
        attributes={"jobId": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
    ),
    Case(
        "spoofed jobType attribute",
        background_body(),
        "message attribute 'jobType' disagrees with the body",
        attributes={"jobType": "diagnostic-fail"},
    ),
    Case(
        "spoofed correlationId attribute",
        background_body(),
        "message attribute 'correlationId' disagrees with the body",
        attributes={"correlationId": "someone-else"},
    ),
    Case(
        "bad diagnostic-sleep seconds",
        background_body(jobType="diagnostic-sleep", trigger={"trigger": "x", "data": {"seconds": 1e300}}),
        "PermanentJobError: data.seconds must be a number from 0 to 3600",
    ),
]
