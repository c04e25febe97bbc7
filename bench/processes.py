"""Processes under test: started through :mod:`bench.launch`, watched from outside.

Each process's stdout is read on a thread that keeps only what the benchmark needs: one record per
finished job, taken from the EMF line the worker already prints (``jobId``, the line's timestamp and
``JobDuration``). CPU time, RSS and threads come from ``/proc`` through psutil, so the workers run
exactly their production code.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import psutil

from bench.launch import COUNTS_FILE_ENV

_STOP_SECONDS: Final = 40.0
#: Children run from the repository root, so ``bench`` imports the same way as ``python -m bench``.
_REPO_ROOT: Final = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One finished job as its worker reported it; times are epoch milliseconds."""

    job_id: str
    finished_ms: int
    duration_ms: int
    succeeded: bool


@dataclass(frozen=True, slots=True)
class Usage:
    """A point-in-time reading of one process."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int
    threads: int


#: The background_job stdout lines that end an attempt (background_job/runner.py); the fleet's EMF is
#: aggregated (common/metrics.py), so these, not a metric line, are the bench's record of each job.
_ATTEMPT_ENDS = {"job.succeeded": True, "job.failed": False, "job.cancelled": False, "job.timed_out": False}


def parse_job_record(line: str) -> JobRecord | None:
    """The job record in a line that ends an attempt, or in a peer's per-job EMF line; None otherwise."""
    if '"job_id"' in line and '"event"' in line:
        return _attempt_end(line)
    if '"jobId"' not in line or '"_aws"' not in line:
        return None
    try:
        document = json.loads(line)
        duration = document.get("JobDuration", 0)  # an array of values in an aggregated line: one job's here
        return JobRecord(
            job_id=str(document["jobId"]),
            finished_ms=int(document["_aws"]["Timestamp"]),
            duration_ms=int(duration[0] if isinstance(duration, list) else duration),
            succeeded=bool(document.get("JobsSucceeded", 1)),
        )
    except (ValueError, KeyError, TypeError):
        return None


def _attempt_end(line: str) -> JobRecord | None:
    try:
        document = json.loads(line)
        succeeded = _ATTEMPT_ENDS.get(document.get("event"))
        if succeeded is None:
            return None
        finished = datetime.fromisoformat(str(document["timestamp"]))
        return JobRecord(
            job_id=str(document["job_id"]),
            finished_ms=int(finished.timestamp() * 1000),
            duration_ms=int(document.get("duration_ms", 0)),
            succeeded=succeeded,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _peak_rss(pid: int, fallback: int) -> int:
    """VmHWM, the kernel's own high-water mark, so a short spike between samples is not missed."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return fallback


class ProcessUnderTest:
    """One child process running a :mod:`bench.launch` target."""

    def __init__(self, target: str, env: Mapping[str, str], counts_file: Path) -> None:
        self.target = target
        self.counts_file = counts_file
        self.records: list[JobRecord] = []
        self.stdout_bytes = 0
        self.stdout_lines = 0
        self._lock = threading.Lock()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.launch", target],
            env={**env, COUNTS_FILE_ENV: str(counts_file), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
            cwd=_REPO_ROOT,
        )
        self._psutil = psutil.Process(self.process.pid)
        self._reader = threading.Thread(target=self._read, name=f"read-{target}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None  # noqa: S101 - opened with stdout=PIPE
        for line in self.process.stdout:
            record = parse_job_record(line)
            with self._lock:
                self.stdout_bytes += len(line.encode())
                self.stdout_lines += 1
                if record is not None:
                    self.records.append(record)

    def finished(self) -> int:
        with self._lock:
            return len(self.records)

    def stdout_volume(self) -> tuple[int, int]:
        """(bytes, lines) written to stdout so far: what the awslogs driver would ship."""
        with self._lock:
            return self.stdout_bytes, self.stdout_lines

    def job_records(self) -> list[JobRecord]:
        with self._lock:
            return list(self.records)

    def usage(self) -> Usage:
        with self._psutil.oneshot():
            times = self._psutil.cpu_times()
            rss = self._psutil.memory_info().rss
            threads = self._psutil.num_threads()
        return Usage(
            cpu_seconds=times.user + times.system,
            rss_bytes=rss,
            peak_rss_bytes=_peak_rss(self.process.pid, rss),
            threads=threads,
        )

    def calls(self) -> dict[str, int]:
        """The latest request counts the process published (see :mod:`bench.launch`)."""
        try:
            return {name: int(count) for name, count in json.loads(self.counts_file.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def request_stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> int:
        """Wait out the worker's own graceful stop; kill it only if it overstays, as ECS would."""
        try:
            return self.process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._reader.join(timeout=5)
            if self.process.stdout is not None:
                self.process.stdout.close()


def stop_all(processes: list[ProcessUnderTest]) -> None:
    """Signal every process first and wait afterwards, so their long polls run out together."""
    for process in processes:
        process.request_stop()
    for process in processes:
        process.wait_stopped()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; raise with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
