"""The side effect every benchmarked job has, fleet and peers alike: one line appended to a per-run file.

Jobs lost or run twice are counted from this file, never from log lines: a job that ran writes its
ID exactly once per run, whatever its framework logs. Each line is ``<jobId> <finished epoch ms>
<duration ms>``, written with one ``write`` on a descriptor opened with ``O_APPEND``, which Linux
makes atomic for a line this short, across threads and across processes.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.processes import JobRecord

EFFECTS_FILE_ENV: Final = "BENCH_EFFECTS_FILE"


def run_job(job_id: str, seconds: float) -> None:
    """The benchmark's job: sleep ``seconds`` (0 for the no-op job), then record that it ran."""
    started = time.monotonic()
    if seconds > 0:
        time.sleep(seconds)
    record(job_id, started)


def record(job_id: str, started_monotonic: float) -> None:
    """Append this run of ``job_id`` to the file named by ``BENCH_EFFECTS_FILE``."""
    duration_ms = round((time.monotonic() - started_monotonic) * 1000)
    line = f"{job_id} {int(time.time() * 1000)} {duration_ms}\n".encode()
    descriptor = os.open(os.environ[EFFECTS_FILE_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def read_records(path: Path) -> list[JobRecord]:
    """Every job run recorded so far, in the order written; a missing file is no run yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:  # a line is written whole; anything else would be a bug worth seeing as a loss
            records.append(
                JobRecord(job_id=parts[0], finished_ms=int(parts[1]), duration_ms=int(parts[2]), succeeded=True)
            )
    return records


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the side effects say about the jobs sent: how many never ran, how many ran more than once."""

    lost: int
    run_twice: int
    extra_runs: int


def delivery(sent: Sequence[str], records: Sequence[JobRecord]) -> Delivery:
    runs = Counter(record.job_id for record in records)
    return Delivery(
        lost=sum(1 for job_id in sent if runs[job_id] == 0),
        run_twice=sum(1 for count in runs.values() if count > 1),
        extra_runs=sum(count - 1 for count in runs.values() if count > 1),
    )
