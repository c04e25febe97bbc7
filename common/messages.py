"""Message contracts: the trigger users send, and the background job main_job enqueues.

Parsing is strict about the fields the fleet relies on and lenient about everything else: unknown
trigger fields are kept and passed through, so senders of the original project keep working. Any
violation raises :class:`MalformedMessage` with a reason precise enough to fix the sender, and the
consumer quarantines the message instead of retrying it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from common.job_ids import is_valid_job_id
from common.schedule_tick import InvalidTick, ScheduledTick, tick_from_document

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

DEFAULT_JOB_TYPE: Final = "main-job-processing"
MAX_NESTING_DEPTH: Final = 64
_JOB_TYPE_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CORRELATION_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:/@+=-]{1,128}")
#: C0 and C1 controls, the Unicode line and paragraph separators (line breaks to some log viewers), surrogates.
_CONTROL_OR_SURROGATE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LONE_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_MAX_NAME_LENGTH: Final = 256
#: The largest finite double, 1.8e308, has 309 digits.
_MAX_INT_DIGITS: Final = 309

#: The queues' MaximumMessageSize (tf/sqs.tf, fleet/local/provision.py). SQS allows 1 MiB since August 2025,
#: but the locked AWS provider (5.100.0) validates max_message_size to 1024-262144 (checked with
#: ``terraform validate`` against the provider binary), so the queues stay at 256 KiB until the provider moves.
QUEUE_MAX_MESSAGE_BYTES: Final = 262_144
#: Room the background message needs beyond the trigger it carries: its envelope (jobId, jobType up to 64
#: characters, correlationId up to 128, enqueuedAt) and its three message attributes, at most about 640
#: bytes (tests/common/test_messages.py pins the bound).
ENVELOPE_RESERVE_BYTES: Final = 1024
#: The trigger queue's MaximumMessageSize: SQS itself refuses a larger trigger at the send, so every trigger
#: SQS accepts fits in its background message (issue 32 item 8; before, a valid trigger near 256 KiB was
#: accepted and then quarantined as "Message must be shorter than 262144 bytes").
MAX_TRIGGER_BYTES: Final = QUEUE_MAX_MESSAGE_BYTES - ENVELOPE_RESERVE_BYTES

#: Where the trigger goes in the compact envelope encoded with ``trigger: None``.
_NO_TRIGGER: Final = ',"trigger":null,'

# Message attribute names on background job messages (the body is the source of truth).
ATTR_JOB_ID: Final = "jobId"
ATTR_JOB_TYPE: Final = "jobType"
ATTR_CORRELATION_ID: Final = "correlationId"


class MalformedMessage(ValueError):
    """The message can never be processed as it is; ``reason`` says why, for the DLQ and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Trigger:
    """A validated trigger; ``raw`` is the whole original object, unknown fields included."""

    trigger: str
    trigger_background_job: bool
    job_type: str
    correlation_id: str | None
    timestamp: str | None
    data: Mapping[str, Any] | None
    raw: Mapping[str, Any]
    #: Set on a trigger sent by a schedule; its job ID then comes from the tick, not the message.
    schedule: ScheduledTick | None = None
    #: The body exactly as received (None when built from a document): the background message carries it.
    text: str | None = None


@dataclass(frozen=True, slots=True)
class BackgroundJob:
    """What main_job enqueues and background_job runs."""

    job_id: str
    job_type: str
    correlation_id: str
    trigger: Mapping[str, Any]
    enqueued_at: str
    #: The trigger's original body (``Trigger.text``), which decodes to ``trigger``; carried verbatim.
    trigger_text: str | None = None

    def to_body(self) -> str:
        """The message body; with ``trigger_text``, exactly the trigger's bytes plus the envelope.

        Re-encoding the trigger could grow it: ensure_ascii turned each non-ASCII character into a 6- or
        12-byte escape, and floats such as ``1e15`` come back as ``1000000000000000.0``. The original text
        SQS already accepted (so its characters are all in SQS's set) and main_job parsed (so it is one JSON
        object, decoding to ``trigger``) is spliced in as it is instead.
        """
        if self.trigger_text is None:
            # ensure_ascii keeps the body plain ASCII whatever the trigger held, so SQS accepts it.
            return json.dumps(self._envelope(self.trigger), separators=(",", ":"))
        head, tail = json.dumps(self._envelope(None), separators=(",", ":")).split(_NO_TRIGGER, 1)
        return f'{head},"trigger":{self.trigger_text},{tail}'

    def _envelope(self, trigger: object) -> dict[str, object]:
        return {
            "jobId": self.job_id,
            "jobType": self.job_type,
            "correlationId": self.correlation_id,
            "trigger": trigger,
            "enqueuedAt": self.enqueued_at,
        }

    def message_attributes(self) -> dict[str, MessageAttributeValueTypeDef]:
        return {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (
                (ATTR_JOB_ID, self.job_id),
                (ATTR_JOB_TYPE, self.job_type),
                (ATTR_CORRELATION_ID, self.correlation_id),
            )
        }


def parse_trigger(body: str) -> Trigger:
    """Validate a trigger body as users send it with ``aws sqs send-message``."""
    return replace(_trigger_from(decode_json_object(body), prefix=""), text=body)


def _trigger_from(document: dict[str, Any], *, prefix: str) -> Trigger:
    """Check a decoded trigger; ``prefix`` names where it sits in reasons (``trigger.`` inside a job)."""
    run_background = document.get("triggerBackgroundJob", True)
    if not isinstance(run_background, bool):
        raise MalformedMessage(
            f"field '{prefix}triggerBackgroundJob' must be a boolean, got {_type_name(run_background)}"
        )
    data = document.get("data")
    if data is not None and not isinstance(data, dict):
        raise MalformedMessage(f"field '{prefix}data' must be an object, got {_type_name(data)}")
    job_type = _optional_text(
        document, "jobType", _JOB_TYPE_PATTERN, "lower-case letters, digits, '.', '_', '-'", prefix=prefix
    )
    return Trigger(
        trigger=_required_name(document, "trigger", prefix=prefix),
        trigger_background_job=run_background,
        job_type=job_type or DEFAULT_JOB_TYPE,
        correlation_id=_optional_text(
            document, "correlationId", _CORRELATION_ID_PATTERN, "letters, digits, ._:/@+=-", prefix=prefix
        ),
        timestamp=_optional_name(document, "timestamp", prefix=prefix),
        data=data,
        raw=document,
        schedule=_optional_tick(document, prefix=prefix),
    )


def _optional_tick(document: Mapping[str, Any], *, prefix: str) -> ScheduledTick | None:
    value = document.get("schedule")
    if value is None:
        return None
    try:
        return tick_from_document(value)
    except InvalidTick as error:
        raise MalformedMessage(f"field '{prefix}schedule': {error}") from None


def parse_background_job(body: str, attributes: Mapping[str, str]) -> BackgroundJob:
    """Validate a background job message; ``attributes`` are its String message attributes."""
    # The trigger sits one level down: a trigger main_job accepted at the deepest nesting must still parse.
    document = decode_json_object(body, max_depth=MAX_NESTING_DEPTH + 1)
    job_id = document.get("jobId")
    if not is_valid_job_id(job_id):
        raise MalformedMessage("field 'jobId' must be a 26-character upper-case ULID")
    trigger = document.get("trigger")
    if not isinstance(trigger, dict):
        raise MalformedMessage(f"field 'trigger' must be an object, got {_type_name(trigger)}")
    # main_job only enqueues valid triggers: one that is not comes from somewhere else, and handlers and
    # job streams must be able to trust its fields as much as main_job's own log lines do.
    _trigger_from(trigger, prefix="trigger.")
    job = BackgroundJob(
        job_id=str(job_id),
        job_type=_required_text(document, "jobType", _JOB_TYPE_PATTERN, "lower-case letters, digits, '.', '_', '-'"),
        correlation_id=_required_text(document, "correlationId", _CORRELATION_ID_PATTERN, "letters, digits, ._:/@+=-"),
        trigger=trigger,
        enqueued_at=_required_name(document, "enqueuedAt"),
    )
    _check_attributes_agree(job, attributes)
    return job


def decode_json_object(body: str, *, max_depth: int = MAX_NESTING_DEPTH) -> dict[str, Any]:
    """Decode ``body`` as one JSON object, refusing what JavaScript senders could not have meant."""
    if not body.strip():
        raise MalformedMessage("body is empty")
    try:
        document = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_finite_int)
    except RecursionError:
        raise MalformedMessage(f"body is nested deeper than {max_depth} levels") from None
    except MalformedMessage:
        raise
    except ValueError as error:  # JSONDecodeError
        raise MalformedMessage(f"body is not valid JSON: {_first_line(error)}") from None
    if not isinstance(document, dict):
        raise MalformedMessage(f"body must be a JSON object, got {_type_name(document)}")
    _check_structure(document, depth=1, path="$", max_depth=max_depth)
    return document


def _check_structure(value: object, *, depth: int, path: str, max_depth: int) -> None:
    """Refuse excessive nesting and unpaired surrogates, which no UTF-8 consumer downstream can store."""
    if depth > max_depth:
        raise MalformedMessage(f"body is nested deeper than {max_depth} levels")
    if isinstance(value, str):
        _check_text(value, f"string at {path}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"a key in {path}")
            _check_structure(item, depth=depth + 1, path=f"{path}.{_printable(key)}", max_depth=max_depth)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_structure(item, depth=depth + 1, path=f"{path}[{index}]", max_depth=max_depth)


def _check_text(text: str, where: str) -> None:
    if _LONE_SURROGATE.search(text):
        raise MalformedMessage(f"{where} contains an unpaired UTF-16 surrogate")


def _required_name(document: Mapping[str, Any], field: str, *, prefix: str = "") -> str:
    value = _optional_name(document, field, prefix=prefix)
    if value is None:
        raise MalformedMessage(f"field '{prefix}{field}' is required")
    return value


def _optional_name(document: Mapping[str, Any], field: str, *, prefix: str = "") -> str | None:
    """A free-text identifier such as a trigger name: bounded, and free of control characters."""
    value = document.get(field)
    name = prefix + field
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"field '{name}' must be a string, got {_type_name(value)}")
    if not value.strip():
        raise MalformedMessage(f"field '{name}' must not be blank")
    if len(value) > _MAX_NAME_LENGTH:
        raise MalformedMessage(f"field '{name}' is longer than {_MAX_NAME_LENGTH} characters")
    if _CONTROL_OR_SURROGATE.search(value):
        raise MalformedMessage(f"field '{name}' contains control characters")
    return value


def _required_text(document: Mapping[str, Any], field: str, pattern: re.Pattern[str], allowed: str) -> str:
    value = _optional_text(document, field, pattern, allowed)
    if value is None:
        raise MalformedMessage(f"field '{field}' is required")
    return value


def _optional_text(
    document: Mapping[str, Any], field: str, pattern: re.Pattern[str], allowed: str, *, prefix: str = ""
) -> str | None:
    value = document.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"field '{prefix}{field}' must be a string, got {_type_name(value)}")
    if pattern.fullmatch(value) is None:
        raise MalformedMessage(f"field '{prefix}{field}' must match {pattern.pattern} ({allowed})")
    return value


def _check_attributes_agree(job: BackgroundJob, attributes: Mapping[str, str]) -> None:
    """Attributes are for routing and filtering; one that contradicts the body means a forged message."""
    for name, expected in (
        (ATTR_JOB_ID, job.job_id),
        (ATTR_JOB_TYPE, job.job_type),
        (ATTR_CORRELATION_ID, job.correlation_id),
    ):
        if name in attributes and attributes[name] != expected:
            raise MalformedMessage(f"message attribute '{name}' disagrees with the body")


def _reject_constant(name: str) -> float:
    raise MalformedMessage(f"body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedMessage("body is not valid JSON: a number is too large to represent")
    return value


def _finite_int(text: str) -> int:
    """Integers a double can hold, like floats: ``1e400`` and a 400-digit integer are refused alike."""
    # The length check comes first: int() of a huge digit string is slow, and past 4300 digits an error.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or abs(value := int(text)) > sys.float_info.max:
        raise MalformedMessage("body is not valid JSON: a number is too large to represent")
    return value


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200]


def _printable(key: str) -> str:
    """Keys echoed into a reason are trimmed and stripped of control characters."""
    return _CONTROL_OR_SURROGATE.sub("?", key)[:40]
