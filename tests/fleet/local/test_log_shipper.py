"""The local log shipper's console echo."""

from __future__ import annotations

import io
import threading
from typing import Any

from fleet.local.log_shipper import LogShipper


class _Recorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)


class _Logs:
    """Only create_log_stream is called by follow(); shipping is not under test here."""

    def create_log_stream(self, **_: Any) -> None:
        return None


def test_echo_writes_each_line_whole_so_workers_never_share_a_console_line() -> None:
    """Every write to the console is one complete line, whichever worker it came from."""
    console = _Recorder()
    shipper = LogShipper(_Logs(), console)  # type: ignore[arg-type]
    pipes = [io.StringIO("".join(f'{{"n": {i}}}\n' for i in range(200))) for _ in range(2)]
    pumps = [shipper.follow(pipe, group="g", stream=f"s{n}", label=f"w{n}") for n, pipe in enumerate(pipes)]
    for pump in pumps:
        pump.join(timeout=10)

    assert 400 == len(console.writes)
    assert all(w.endswith("\n") and w.count("\n") == 1 and w.startswith("[w") for w in console.writes)
    assert not any(thread.name.startswith("pump-") and thread.is_alive() for thread in threading.enumerate())
