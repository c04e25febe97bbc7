"""``./deploy.sh local`` as a user runs it (its Python entry point, on a free port), for end-to-end tests."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.waiting import wait_until


@dataclass(frozen=True)
class StartedFleet:
    process: subprocess.Popen[str]
    #: The ``fleet.ready`` announcement: endpoint, queues and the rest.
    announcement: dict[str, Any]
    console: list[str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def started_fleet(env: Mapping[str, str]) -> Iterator[StartedFleet]:
    """Start the local fleet with ``env``, wait for ``fleet.ready``; on exit stop it with SIGTERM and expect 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet.local.fleet", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
    )
    console: list[str] = []
    pump = threading.Thread(target=lambda: console.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    pump.start()

    def ready() -> dict[str, Any] | None:
        for line in list(console):
            if line.startswith('{"event": "fleet.ready"'):
                return dict(json.loads(line))
        assert process.poll() is None, "".join(console)
        return None

    announcement = wait_until(ready, timeout=60, what="fleet.ready")
    yield StartedFleet(process, announcement, console)
    process.send_signal(signal.SIGTERM)
    exit_code = process.wait(timeout=60)
    pump.join(timeout=10)
    process.stdout.close()  # type: ignore[union-attr]
    assert 0 == exit_code, "".join(console[-40:])
