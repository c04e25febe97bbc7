"""The embedded emulator: moto server, extended where the fleet's users would see it differ from AWS.

Extensions applied to moto in this process only (never in the workers, which talk to it through
``AWS_ENDPOINT_URL`` exactly as to AWS):

* **CloudWatch Logs FilterLogEvents** honours ``logStreamNamePrefix`` and the filter patterns users type
  with ``aws logs tail --filter-pattern`` (fleet.local.filter_pattern); moto ignores the prefix and
  matches only single terms.
* **SQS is serialised**: moto 5's server handles requests on many threads but its SQS backend is not
  atomic (concurrent DeleteMessageBatch can bring deleted messages back, two receives can return the same
  message). One lock covers every operation that reads or changes messages. A long poll waits outside
  the lock, so it never blocks other callers.
* **SQS refuses what AWS refuses** (fleet.local.sqs_validation): characters outside SQS's set in a body or
  an attribute value, and a message over the queue's size counted in bytes with its attributes.
* **DynamoDB writes are serialised** the same way: moto applies a TransactWriteItems by checking and
  writing without a lock, and restores a copy of the table when one is cancelled, which can undo
  another thread's write. DynamoDB itself is atomic per item and per transaction, and the job ledger's
  claim relies on it. A cancelled transaction restores only the items it named, not a copy of the table.
* **Costs AWS does not have are removed**: waitress serves moto with keep-alive connections (moto's
  werkzeug server closes each one after a response), SQS reads the system clock instead of building a
  datetime per queued message, and the route table is listed once, not per request. Together they took
  the emulator from 18.8 to 4.4 CPU ms per fleet job, so that figures measured on it are the workers'.
* **moto's UpdateItem costs less, with the same answers** (fleet.local.dynamodb_speed): each update
  expression parsed and shape-checked once per text, its tree copied by pickle, condition expressions
  lexed once per text. The job ledger's writes took about 15 ms of emulator CPU per job before.

Start it with :func:`start_emulator` (the local fleet, the tests and the benchmarks) or
``python -m fleet.local.emulator --port N``.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from fleet.local import dynamodb_recorder, dynamodb_speed
from fleet.local.sqs_validation import patch_send_validation

HOST = "127.0.0.1"
#: SQS backend methods whose effect moto does not make atomic; receive_message is handled apart.
_SERIALISED_SQS_METHODS = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
    "get_queue_attributes",
    "set_queue_attributes",
    "create_queue",
    "delete_queue",
)
_SQS_LOCK = threading.RLock()
#: DynamoDB backend methods that change items; moto does not make them atomic across threads.
_SERIALISED_DYNAMODB_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
)
_DYNAMODB_LOCK = threading.RLock()
_LONG_POLL_STEP_SECONDS = 0.2
_UNRECEIVABLE_NAP_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1
#: Request threads: every long poll holds one for up to 20 s, and the peers' benchmarks run ten pollers.
_SERVER_THREADS = 64
_SERVER_CONNECTIONS = 1000
#: Longer than any long poll (20 s) and shorter than botocore's idle-connection reuse would notice.
_IDLE_CONNECTION_SECONDS = 60


class EmulatorError(RuntimeError):
    """The emulator did not start; the message carries its own error when it gave one."""


# --- the patches (run inside the emulator process) -------------------------------------------------------
def patch_moto() -> None:
    """Apply both extensions to the imported moto; idempotent."""
    _patch_clock()
    _patch_dispatch()
    _patch_sqs()
    patch_send_validation()
    serialise_dynamodb()
    dynamodb_speed.install()
    _patch_logs()


def _patch_clock() -> None:
    """moto reads the clock through ``datetime.now(UTC)`` with an import inside the function, several times
    per queued message on every receive: at a depth of a few hundred that was most of the emulator's CPU,
    and it made every throughput figure depend on queue depth as AWS's do not."""
    import moto.core.utils as moto_utils  # noqa: PLC0415 - imported only in the emulator process
    import moto.sqs.models as sqs_models  # noqa: PLC0415

    original = moto_utils.unix_time
    if getattr(original, "_fleet_clock", False):
        return

    def unix_time(dt: Any = None) -> float:  # noqa: ANN401 - moto's naive datetime or None
        return time.time() if dt is None else original(dt)

    def unix_time_millis(dt: Any = None) -> float:  # noqa: ANN401 - as above
        return unix_time(dt) * 1000.0

    unix_time.__dict__["_fleet_clock"] = True
    for module in (moto_utils, sqs_models):
        module.unix_time = unix_time  # type: ignore[attr-defined]
        module.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]


def _patch_dispatch() -> None:
    """moto lists its own package directory on every request to route it; the list never changes."""
    import moto.backends  # noqa: PLC0415 - imported only in the emulator process

    if not getattr(moto.backends.list_of_moto_modules, "_fleet_cached", False):
        modules = tuple(moto.backends.list_of_moto_modules())
        cached = functools.wraps(moto.backends.list_of_moto_modules)(lambda: modules)
        cached.__dict__["_fleet_cached"] = True
        moto.backends.list_of_moto_modules = cached


def _serialised(method: Callable[..., Any], lock: threading.RLock = _SQS_LOCK) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - wraps untyped moto methods
        with lock:
            return method(*args, **kwargs)

    locked.__dict__["_fleet_serialised"] = True
    return locked


def _patch_sqs() -> None:
    from moto.sqs.models import SQSBackend  # noqa: PLC0415 - imported only in the emulator process

    if getattr(SQSBackend.receive_message, "_fleet_serialised", False):
        return
    for name in _SERIALISED_SQS_METHODS:
        setattr(SQSBackend, name, _serialised(getattr(SQSBackend, name)))
    original_receive = SQSBackend.receive_message

    @functools.wraps(original_receive)
    def receive_message(  # noqa: PLR0917 - moto's own signature
        self: Any,  # noqa: ANN401 - moto's SQSBackend, untyped
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:  # noqa: ANN401 - moto's messages
        """Each attempt is a locked zero-wait receive; the long poll waits between attempts, unlocked.

        A send wakes the wait at once. Messages that are visible after an empty attempt either arrived
        just now (try again at once) or cannot be received (a FIFO group in flight): only when that
        happens twice in a row does the poll nap, so that it neither spins nor delays a new message.
        """
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        visible_but_unreceived = False
        while True:
            with _SQS_LOCK:
                found = original_receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            queue = self.get_queue(queue_name)
            if not queue.messages:
                visible_but_unreceived = False
                queue.wait_for_messages(min(_LONG_POLL_STEP_SECONDS, remaining))
            elif visible_but_unreceived:
                time.sleep(min(_UNRECEIVABLE_NAP_SECONDS, remaining))
            else:
                visible_but_unreceived = True

    receive_message.__dict__["_fleet_serialised"] = True
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def serialise_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - imported only in the emulator process

    if getattr(DynamoDBBackend.transact_write_items, "_fleet_serialised", False):
        return
    _roll_back_only_touched_items()
    for name in _SERIALISED_DYNAMODB_METHODS:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name), _DYNAMODB_LOCK))


class _TablesByReference:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: a table "copy" is the table itself.

    moto deep-copies every table a TransactWriteItems names before applying it, so that a cancelled one
    can be restored: a cost that grows with the table (the job ledger's claims slowed from 180 to 11 jobs/s
    over a few thousand items). :func:`_roll_back_only_touched_items` restores the touched items instead.
    """

    def __init__(self) -> None:
        import copy  # noqa: PLC0415

        self._copy = copy

    def deepcopy(self, thing: Any, memo: dict[int, Any] | None = None) -> Any:  # noqa: ANN401 - any moto object
        from moto.dynamodb.models.table import Table  # noqa: PLC0415

        return thing if isinstance(thing, Table) else self._copy.deepcopy(thing, memo)


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:  # noqa: ANN401
    """(table, hash key, range key, a copy of the item or None) for every item the transaction names."""
    import copy  # noqa: PLC0415

    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

    touched = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op["Item"] if op_type == "Put" else op.get("Key", {})
            if table.hash_key_attr not in key:
                continue
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            item = table.items.get(hash_key)
            if range_key is not None and item is not None:
                item = item.get(range_key)
            touched.append((table, hash_key, range_key, copy.deepcopy(item)))
    return touched


def _restore(touched: list[tuple[Any, Any, Any, Any]]) -> None:
    for table, hash_key, range_key, item in reversed(touched):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        elif item is None:
            table.items.get(hash_key, {}).pop(range_key, None)
        else:
            table.items[hash_key][range_key] = item


def _roll_back_only_touched_items() -> None:
    import moto.dynamodb.models as dynamodb_models  # noqa: PLC0415

    backend_class = dynamodb_models.DynamoDBBackend
    original = backend_class.transact_write_items
    dynamodb_models.copy = _TablesByReference()  # type: ignore[attr-defined,assignment]

    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:  # noqa: ANN401
        touched = _touched_items(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            _restore(touched)
            raise

    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _patch_logs() -> None:  # noqa: C901 - one patch: nested handlers read moto's state
    from moto.logs import models  # noqa: PLC0415 - imported only in the emulator process
    from moto.logs.exceptions import InvalidParameterException  # noqa: PLC0415
    from moto.logs.responses import LogsResponse  # noqa: PLC0415

    from fleet.local.filter_pattern import FilterPatternError, compile_filter_pattern  # noqa: PLC0415

    if getattr(LogsResponse.filter_log_events, "_fleet_patched", False):
        return
    compiled = functools.lru_cache(maxsize=64)(compile_filter_pattern)  # built once per event otherwise

    class PatternFilter:
        """Stands in for moto's EventMessageFilter, which LogStream.filter_log_events builds per event."""

        def __init__(self, pattern: str) -> None:
            try:
                self._matches = compiled(pattern)
            except FilterPatternError as error:
                raise InvalidParameterException(msg=str(error)) from error

        def matches(self, message: str) -> bool:
            return self._matches(message)

    models.EventMessageFilter = PatternFilter  # type: ignore[attr-defined,assignment]
    original = LogsResponse.filter_log_events

    @functools.wraps(original)
    def filter_log_events(self: Any) -> str:  # noqa: ANN401 - moto's LogsResponse
        """moto's handler, with the stream list narrowed by logStreamNamePrefix as on AWS."""
        group_name = self._get_param("logGroupName")
        names = self._get_param("logStreamNames", [])
        prefix = self._get_param("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameterException(msg="logStreamNames and logStreamNamePrefix are mutually exclusive")
        group = self.logs_backend.groups.get(group_name)
        if prefix and group is not None:
            names = [name for name in group.streams if name.startswith(prefix)]
            if not names:  # moto reads an empty list as "every stream"
                return json.dumps({"events": [], "searchedLogStreams": []})
        events, next_token, searched = self.logs_backend.filter_log_events(
            group_name,
            names,
            self._get_param("startTime"),
            self._get_param("endTime"),
            self._get_param("limit"),
            self._get_param("nextToken"),
            self._get_param("filterPattern"),
            self._get_param("interleaved", False),
        )
        return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

    filter_log_events.__dict__["_fleet_patched"] = True
    LogsResponse.filter_log_events = filter_log_events  # type: ignore[method-assign]


# --- the launcher (runs in the caller) ------------------------------------------------------------------
def _die_with_parent() -> None:
    """preexec_fn: the kernel kills this child when the thread that started it exits (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def child_preexec(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn that ties a child's life to ``parent_pid`` (the supervisor); no-op off Linux."""

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            _die_with_parent()
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a server could bind ``port`` now (as waitress binds it, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _listening(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


def start_emulator(
    port: int,
    *,
    host: str = HOST,
    log_path: Path | None = None,
    timeout: float = 30.0,
    stop: threading.Event | None = None,
    record_dynamodb: bool = False,
) -> subprocess.Popen[bytes]:
    """Start the patched moto server on ``port`` and return once it listens.

    The child dies with the calling process (PR_SET_PDEATHSIG), sits in its own session (Ctrl-C reaches
    only the caller, which stops it last), and writes its output to ``log_path`` so that a failed start
    is reported in the emulator's own words (for example "Address already in use"). ``record_dynamodb``
    records every DynamoDB item write for the benchmark's cost model (fleet.local.dynamodb_recorder).
    """
    log: IO[bytes] = log_path.open("wb") if log_path is not None else open(os.devnull, "wb")  # noqa: SIM115
    with log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [
                sys.executable,
                "-m",
                "fleet.local.emulator",
                "--host",
                host,
                "--port",
                str(port),
                *(["--record-dynamodb"] if record_dynamodb else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_preexec(os.getpid()),  # noqa: PLW1509 - only prctl/getppid, no locks taken
        )
    deadline = time.monotonic() + timeout
    while not _listening(port, host):
        if process.poll() is not None:
            raise EmulatorError(f"moto server exited at start-up: {_last_error(log_path)}")
        if time.monotonic() > deadline or (stop is not None and stop.wait(0.05)) or (stop is None and _nap()):
            stop_emulator(process)
            raise EmulatorError(f"moto server did not listen on {host}:{port} within {timeout:.0f}s")
    return process


def _nap() -> bool:
    time.sleep(0.05)
    return False


def stop_emulator(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _last_error(log_path: Path | None) -> str:
    """The emulator's own words: its last line naming an error, else its last line."""
    if log_path is None or not log_path.exists():
        return "no output captured (is moto[server] installed? ./deploy.sh installs it)"
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return "it printed nothing (is moto[server] installed? ./deploy.sh installs it)"
    errors = [line for line in lines if "rror" in line or "in use" in line]
    return errors[-1] if errors else lines[-1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleet.local.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--record-dynamodb", action="store_true", help="record DynamoDB item writes for the benchmark's cost model"
    )
    args = parser.parse_args(argv)
    patch_moto()
    if args.record_dynamodb:
        dynamodb_recorder.install(_DYNAMODB_LOCK)
    serve(args.host, args.port, record_dynamodb=args.record_dynamodb)


def serve(host: str, port: int, *, record_dynamodb: bool = False) -> None:
    """moto's WSGI application behind waitress, which keeps connections alive as AWS endpoints do.

    moto's own server (werkzeug's development server) closes every connection after one response, so
    each AWS call would pay a TCP connect in the client and a new thread in the emulator: costs that
    AWS does not impose and that would dominate every CPU and throughput figure measured here.
    """
    import waitress  # noqa: PLC0415 - imported only in the emulator process
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415 - after the patches
        DomainDispatcherApplication,
        create_backend_app,
    )

    os.environ.setdefault("MOTO_PORT", str(port))
    application = DomainDispatcherApplication(create_backend_app)
    waitress.serve(
        dynamodb_recorder.middleware(application) if record_dynamodb else application,
        host=host,
        port=port,
        threads=_SERVER_THREADS,
        connection_limit=_SERVER_CONNECTIONS,
        channel_timeout=_IDLE_CONNECTION_SECONDS,
        ident="fleet-emulator",
        _quiet=True,
    )


if __name__ == "__main__":
    main()
