"""The emulator refuses the SQS sends AWS refuses: characters outside SQS's set, and messages over the queue's size.

moto stored a message whose string attribute held an unpaired surrogate, answered the send with an HTTP
500 (it failed while hashing the attributes, after storing), and every later receive that included the
message failed too: 0 of 9 valid triggers sent beside it ran (issue 32, item 9a). AWS refuses such a send
with a 400 and stores nothing. The rules followed here are the SQS API reference's (SendMessage,
SendMessageBatch, MessageAttributeValue):

* A message body and a String (or Number) attribute value may hold only ``#x9 | #xA | #xD | #x20-#xD7FF |
  #xE000-#xFFFD | #x10000-#x10FFFF``. SendMessage answers an invalid body with ``InvalidMessageContents``
  and an invalid attribute value with ``InvalidParameterValue``, both HTTP 400.
* SendMessageBatch reports each entry's result individually (HTTP 200): an invalid entry becomes a
  ``Failed`` entry with that code and ``SenderFault: true``, and its neighbours are stored.
* The message size counts the body and every attribute's name, type and value, in bytes (UTF-8); moto
  counted the body's characters only, so a body of multi-byte characters, or a body whose attributes
  took it over the limit, passed locally and failed on AWS.

Applied to moto's SQS responses in the emulator process only (:func:`patch_send_validation`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

#: One character outside SQS's allowed set (the API reference's list; surrogates are outside it).
_OUTSIDE_ALLOWED: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
INVALID_PARAMETER: Final = "InvalidParameterValue"
INVALID_CONTENTS: Final = "InvalidMessageContents"


def invalid_character(text: str) -> str | None:
    """The first character of ``text`` SQS does not allow, as ``#xD800``; None when every one is allowed."""
    found = _OUTSIDE_ALLOWED.search(text)
    return None if found is None else f"#x{ord(found.group()):X}"


def message_size(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """The size SQS counts against MaximumMessageSize: body and attributes (name, type, value), in bytes."""
    size = _bytes(body)
    for name, value in attributes.items():
        size += _bytes(name) + _bytes(str(value.get("DataType", "")))
        for field in ("StringValue", "BinaryValue"):
            if value.get(field) is not None:
                size += _bytes(value[field])
    return size


def _bytes(value: str | bytes) -> int:
    # surrogatepass: an unpaired surrogate is refused by content, not by a crash while it is measured.
    return len(value) if isinstance(value, bytes) else len(value.encode("utf-8", "surrogatepass"))


def refusal(body: str, attributes: Mapping[str, Mapping[str, Any]], max_size: int) -> tuple[str, str] | None:
    """(code, message) as AWS words the refusal of this message, or None when AWS would take it."""
    if (where := invalid_character(body)) is not None:
        return INVALID_CONTENTS, f"Invalid binary character '{where}' was found in the message body."
    for name, value in attributes.items():
        texts = [value.get("StringValue"), *(value.get("StringListValues") or [])]
        for text in texts:
            if isinstance(text, str) and (where := invalid_character(text)) is not None:
                return INVALID_PARAMETER, f"Message (user) attribute '{name}' value contains invalid character {where}."
    if message_size(body, attributes) > max_size:
        return (
            INVALID_PARAMETER,
            f"One or more parameters are invalid. Reason: Message must be shorter than {max_size} bytes.",
        )
    return None


def patch_send_validation() -> None:
    """Validate SendMessage and each SendMessageBatch entry before moto sees them; idempotent."""
    from moto.sqs.exceptions import SQSException  # noqa: PLC0415 - imported only in the emulator process
    from moto.sqs.responses import SQSResponse  # noqa: PLC0415

    if getattr(SQSResponse.send_message, "_fleet_validated", False):
        return
    original_send = SQSResponse.send_message
    original_batch = SQSResponse.send_message_batch

    @functools.wraps(original_send)
    def send_message(self: Any) -> Any:  # noqa: ANN401 - moto's untyped response
        body = str(self._get_param("MessageBody") or "")
        found = refusal(body, self._get_param("MessageAttributes", {}) or {}, _limit(self))
        if found is not None:
            raise SQSException(*found)
        return original_send(self)

    @functools.wraps(original_batch)
    def send_message_batch(self: Any) -> Any:  # noqa: ANN401 - moto's untyped response
        return _send_valid_entries(self, original_batch)

    for patched in (send_message, send_message_batch):
        patched.__dict__["_fleet_validated"] = True
    SQSResponse.send_message = send_message  # type: ignore[method-assign]
    SQSResponse.send_message_batch = send_message_batch  # type: ignore[method-assign]


def _send_valid_entries(response: Any, original: Callable[[Any], Any]) -> Any:  # noqa: ANN401 - moto's types
    """Hand moto only the valid entries; the others come back as ``Failed`` entries, sender's fault."""
    from moto.core.responses import ActionResult  # noqa: PLC0415 - imported only in the emulator process

    entries = list(response._get_param("Entries", []) or [])
    limit = _limit(response) if entries else 0
    kept, failed = [], []
    for entry in entries:
        found = refusal(str(entry.get("MessageBody") or ""), entry.get("MessageAttributes") or {}, limit)
        if found is None:
            kept.append(entry)
        else:
            failed.append({"Id": entry.get("Id"), "SenderFault": True, "Code": found[0], "Message": found[1]})
    if not failed:
        return original(response)
    if not kept:
        return ActionResult({"Successful": [], "Failed": failed})
    response.params["Entries"] = kept
    result = original(response)
    document: dict[str, Any] = result.result
    document["Failed"] = [*document.get("Failed", []), *failed]
    return result


def _limit(response: Any) -> int:  # noqa: ANN401 - moto's untyped response
    """The queue's MaximumMessageSize (moto refuses an unknown queue in its own words)."""
    queue = response.sqs_backend.get_queue(response._get_queue_name())
    return int(queue.maximum_message_size)
