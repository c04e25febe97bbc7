"""Records every DynamoDB item write the emulator applies, with the item before and after: the bill's input.

DynamoDB bills a write by the item's size before and after it, and a global secondary index by whether
the item enters, leaves or changes in the index (bench/dynamodb_cost.py). Both depend on the item's
state, which a request alone does not carry: an ``if_not_exists`` or an ``ADD`` means something only
against the stored item. So the emulator, which holds that state, records each write as it applies it:
the item before and after (DynamoDB JSON), whether it ran inside a TransactWriteItems, and whether it
applied (a refused condition or a cancelled transaction leaves the item as it was). Because every write
runs under the emulator's DynamoDB lock, before, write and after are one atomic step, in the order the
table saw them: the images are moto's own, so nothing in the model re-implements expression evaluation.

Off unless the emulator starts with ``--record-dynamodb`` (the benchmark); the workers never see it.
``GET /__fleet__/dynamodb-writes`` returns the records so far and forgets them.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

RECORDS_PATH: Final = "/__fleet__/dynamodb-writes"
_records: list[dict[str, Any]] = []
_records_lock = threading.Lock()
_inside = threading.local()


def drain() -> list[dict[str, Any]]:
    """The records so far, oldest first; the list starts empty again."""
    global _records
    with _records_lock:
        taken, _records = _records, []
    return taken


Image = dict[str, Any] | None


def _record(table: str, operation: str, before: Image, after: Image, *, transactional: bool, applied: bool) -> None:
    entry = {
        "table": table,
        "operation": operation,
        "before": before,
        "after": after if applied else before,
        "transactional": transactional,
        "applied": applied,
    }
    with _records_lock:
        _records.append(entry)


def _image(item: Any) -> Image:  # noqa: ANN401 - moto's Item or None
    """A copy of the item in DynamoDB JSON, taken now: moto changes an Item's attributes in place."""
    return None if item is None else dict(item.to_json()["Attributes"])


def _key_of(backend: Any, table_name: str, attrs: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN401
    table = backend.get_table(table_name)
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None and table.range_key_attr in attrs:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _current(backend: Any, table_name: str, key: dict[str, Any]) -> Image:  # noqa: ANN401 - moto's backend
    """The stored item's image now; None when there is none (or the table or key is bad: moto reports that)."""
    try:
        return _image(backend.get_item(table_name, key))
    except Exception:  # noqa: BLE001 - moto's own call raises the client's error
        return None


def _single(operation: str, key_of: Callable[..., dict[str, Any]], lock: threading.RLock) -> Callable[..., Any]:
    """Wrap one single-item write (PutItem, UpdateItem, DeleteItem) of the backend."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def recorded(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            if getattr(_inside, "transaction", False):
                return method(self, table_name, *args, **kwargs)  # recorded by the transaction
            with lock:
                key = key_of(self, table_name, *args, **kwargs)
                before = _current(self, table_name, key)
                try:
                    result = method(self, table_name, *args, **kwargs)
                except Exception as error:
                    if type(error).__name__ == "ConditionalCheckFailed":
                        _record(table_name, operation, before, before, transactional=False, applied=False)
                    raise
                _record(
                    table_name, operation, before, _current(self, table_name, key), transactional=False, applied=True
                )
                return result

        recorded.__dict__["_fleet_recorded"] = True
        return recorded

    return wrap


def _transaction(lock: threading.RLock) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def recorded(self: Any, transact_items: list[dict[str, Any]]) -> Any:  # noqa: ANN401
            with lock:
                named = list(_named_items(self, transact_items))
                befores = [_current(self, table, key) for _, table, key in named]
                _inside.transaction = True
                try:
                    result = method(self, transact_items)
                except Exception as error:
                    # Cancelled (a condition, a conflict): DynamoDB did the work, and bills it. A request it
                    # rejected before starting (a validation error) wrote nothing and is not recorded.
                    if type(error).__name__ == "TransactionCanceledException":
                        for (operation, table, _), before in zip(named, befores, strict=True):
                            _record(table, operation, before, before, transactional=True, applied=False)
                    raise
                finally:
                    _inside.transaction = False
                for (operation, table, key), before in zip(named, befores, strict=True):
                    after = _current(self, table, key)
                    _record(table, operation, before, after, transactional=True, applied=True)
                return result

        recorded.__dict__["_fleet_recorded"] = True
        return recorded

    return wrap


def _named_items(backend: Any, transact_items: list[dict[str, Any]]) -> Iterable[tuple[str, str, dict[str, Any]]]:  # noqa: ANN401
    """(operation, table, key) of every action in a TransactWriteItems request."""
    for entry in transact_items:
        for operation, action in entry.items():
            table = action.get("TableName")
            if table not in backend.tables:
                continue
            yield operation, table, (_key_of(backend, table, action["Item"]) if operation == "Put" else action["Key"])


def install(lock: threading.RLock) -> None:
    """Record every item write of moto's DynamoDB backend from now on; idempotent."""
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - imported only in the emulator process

    if getattr(DynamoDBBackend.update_item, "_fleet_recorded", False):
        return
    backend: Any = DynamoDBBackend
    backend.put_item = _single("PutItem", lambda b, t, *a, **k: _key_of(b, t, _arg(a, k, "item_attrs")), lock)(
        backend.put_item
    )
    backend.update_item = _single("UpdateItem", lambda _b, _t, *a, **k: _arg(a, k, "key"), lock)(backend.update_item)
    backend.delete_item = _single("DeleteItem", lambda _b, _t, *a, **k: _arg(a, k, "key"), lock)(backend.delete_item)
    backend.transact_write_items = _transaction(lock)(backend.transact_write_items)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> dict[str, Any]:
    """moto's second argument (the item or the key), whether passed by position or by name."""
    value: dict[str, Any] = args[0] if args else kwargs[name]
    return value


def middleware(application: Callable[..., Any]) -> Callable[..., Any]:
    """Serve ``GET /__fleet__/dynamodb-writes`` in front of moto's WSGI application."""

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != RECORDS_PATH:
            result: Iterable[bytes] = application(environ, start_response)
            return result
        body = json.dumps(drain()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return serve
