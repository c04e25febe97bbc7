"""Runs one peer-table scenario: a queue the bench fills, one peer's processes, side effects and counts.

The same readings as :mod:`bench.harness`, taken the same way: request counts, CPU and memory just
before the first message is sent and just after the last is deleted. CPU and peak RSS cover every
process of the peer (dramatiq, sqs-workers and PyQS run several); RSS is the sum of each process's
own high-water mark. Throughput and latency come from the side-effect file, and so do jobs lost or
run twice.
"""

from __future__ import annotations

import math
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil
from ulid import ULID

from bench.emulator import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT, Emulator, Resources
from bench.harness import MB, ScenarioResult, worker_env
from bench.peers import env as peer_env
from bench.peers.adapters import PEERS, Entry, Peer
from bench.peers.counting import COUNTS_DIR_ENV, read_counts
from bench.peers.effects import EFFECTS_FILE_ENV, delivery, read_records
from bench.processes import wait_for
from bench.stats import latency_ms, throughput
from bench.workloads import Scenario

_REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_SITE_DIR: Final = Path(__file__).resolve().parent / "site"
_STOP_SECONDS: Final = 40.0
_BATCH: Final = 10
#: The peers' long polls where they can be set; shorter than the default only so each scenario stops quickly.
RECEIVE_WAIT_SECONDS: Final = 5


class PeerFailed(RuntimeError):
    """The peer could not run against the emulator; the message says why, with its own last words."""


@dataclass(frozen=True, slots=True)
class TreeUsage:
    cpu_seconds: float
    peak_rss_bytes: int
    processes: int


def _peak_rss(process: psutil.Process) -> int:
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


class PeerProcess:
    """A peer's top process and, through psutil, every process it forks."""

    def __init__(self, command: list[str], env: Mapping[str, str], output: Path) -> None:
        self.output = output
        with output.open("wb") as sink:
            self.process = subprocess.Popen(
                command, env=dict(env), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True, cwd=_REPO_ROOT
            )
        self._root = psutil.Process(self.process.pid)

    def tree(self) -> list[psutil.Process]:
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def usage(self) -> TreeUsage:
        cpu, rss, count = 0.0, 0, 0
        for process in self.tree():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            cpu += times.user + times.system
            rss += _peak_rss(process)
            count += 1
        return TreeUsage(cpu_seconds=cpu, peak_rss_bytes=rss, processes=count)

    def last_words(self, lines: int = 8) -> str:
        try:
            tail = self.output.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return " | ".join(tail)

    def stop(self) -> None:
        """SIGTERM to the process group (what ECS or a supervisor sends), SIGKILL if it overstays."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        for process in self.tree():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class EffectsCounter:
    """Distinct jobs run so far, read incrementally from the side-effect file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._seen: set[str] = set()

    def __call__(self) -> int:
        try:
            with self._path.open("rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read()
        except FileNotFoundError:
            return 0
        complete = chunk.rfind(b"\n") + 1
        self._offset += complete
        self._seen.update(line.split(b" ", 1)[0].decode() for line in chunk[:complete].splitlines())
        return len(self._seen)


def _feed(
    emulator: Emulator, url: str, entries: Callable[[int], list[Entry]], scenario: Scenario, finished: Callable[[], int]
) -> None:
    """Closed loop, as for the fleet: top up whenever fewer than ``depth`` jobs are unfinished."""
    sent = 0
    while sent < scenario.jobs:
        if sent - finished() <= scenario.depth - _BATCH:
            batch = entries(min(_BATCH, scenario.jobs - sent))
            emulator.sqs.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), **entry} for i, entry in enumerate(batch)],  # type: ignore[typeddict-item]
            )
            sent += len(batch)
        else:
            time.sleep(0.005)


def _queue_url(emulator: Emulator, resources: Resources, peer: Peer) -> str:
    if peer.queue_name is None:
        return resources.urls.background
    return emulator.sqs.create_queue(
        QueueName=peer.queue_name, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)}
    )["QueueUrl"]


def _env(emulator: Emulator, resources: Resources, scenario: Scenario, url: str, directory: Path) -> dict[str, str]:
    peer = PEERS[scenario.pipeline]
    counts = directory / f"{scenario.label}.counts"
    counts.mkdir()
    return {
        **worker_env(emulator, resources, scenario),
        "PYTHONPATH": f"{_SITE_DIR}:{_REPO_ROOT}",
        "PYTHONUNBUFFERED": "1",
        COUNTS_DIR_ENV: str(counts),
        EFFECTS_FILE_ENV: str(directory / f"{scenario.label}.effects"),
        peer_env.QUEUE_NAME_ENV: peer.queue_name or resources.names.background_queue,
        peer_env.QUEUE_URL_ENV: url,
        peer_env.CONCURRENCY_ENV: str(scenario.concurrency),
        peer_env.RECEIVE_WAIT_ENV: str(RECEIVE_WAIT_SECONDS),
        peer_env.LOG_GROUP_ENV: resources.names.background_job_log_group,
        "BENCH_MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
        **peer.env,
    }


def run_peer_scenario(emulator: Emulator, scenario: Scenario, work_dir: Path | None = None) -> ScenarioResult:
    """Run one peer scenario; a peer that cannot run gives a result with ``error`` set, not an exception."""
    peer = PEERS[scenario.pipeline]
    resources = emulator.fresh_resources(scenario.label)
    directory = work_dir or Path(tempfile.mkdtemp(prefix="bench-peer-"))
    url = _queue_url(emulator, resources, peer)
    env = _env(emulator, resources, scenario, url, directory)
    process = PeerProcess(
        peer.command(scenario.concurrency, env[peer_env.QUEUE_NAME_ENV]), env, directory / f"{scenario.label}.out"
    )
    counts_dir = Path(env[COUNTS_DIR_ENV])
    try:
        _wait_ready(process, counts_dir, scenario)
        return _measure(
            emulator, scenario, peer, process, url=url, counts_dir=counts_dir, effects=Path(env[EFFECTS_FILE_ENV])
        )
    except (PeerFailed, TimeoutError, ImportError) as failure:  # a peer not installed cannot encode its jobs
        return failed(scenario, f"{failure}; last output: {process.last_words()}")
    finally:
        process.stop()


def _wait_ready(process: PeerProcess, counts_dir: Path, scenario: Scenario) -> None:
    def ready() -> bool:
        if process.process.poll() is not None:
            raise PeerFailed(f"{scenario.pipeline} exited at start-up with status {process.process.returncode}")
        return read_counts(counts_dir).get("ReceiveMessage", 0) > 0

    wait_for(ready, 60, f"{scenario.label} to send its first ReceiveMessage")


def _measure(
    emulator: Emulator,
    scenario: Scenario,
    peer: Peer,
    process: PeerProcess,
    *,
    url: str,
    counts_dir: Path,
    effects: Path,
) -> ScenarioResult:
    job_ids: list[str] = []

    def entries(size: int) -> list[Entry]:
        batch = []
        for _ in range(size):
            job_ids.append(str(ULID()))
            batch.append(peer.encode(job_ids[-1], scenario.workload, len(job_ids)))
        return batch

    finished = EffectsCounter(effects)
    calls_before, usage_before, emulator_before = read_counts(counts_dir), process.usage(), emulator.cpu_seconds()
    started = time.monotonic()
    _feed(emulator, url, entries, scenario, finished)
    wait_for(
        lambda: finished() >= scenario.jobs or process.process.poll() is not None,
        120 + scenario.jobs * 0.5,
        f"{scenario.label}: all jobs to run",
    )
    if process.process.poll() is not None:
        raise PeerFailed(f"{scenario.pipeline} exited with status {process.process.returncode} while jobs ran")
    undeleted = _wait_deleted(emulator, url)
    wall = time.monotonic() - started
    time.sleep(0.6)  # let every process publish its final counts (every 0.25 s)
    after = process.usage()
    calls = {
        name: count - calls_before.get(name, 0)
        for name, count in read_counts(counts_dir).items()
        if count > calls_before.get(name, 0)
    }
    records = read_records(effects)
    outcome = delivery(job_ids, records)
    first_runs = list({record.job_id: record for record in reversed(records)}.values())
    return ScenarioResult(
        label=scenario.label,
        pipeline=scenario.pipeline,
        workload=scenario.workload.name,
        concurrency=scenario.concurrency,
        jobs=scenario.jobs,
        rate=None,
        wall_seconds=round(wall, 2),
        jobs_per_second=round(throughput(first_runs), 2),
        requests_per_job=round(sum(calls.values()) / scenario.jobs, 3),
        requests_by_operation={name: round(count / scenario.jobs, 3) for name, count in sorted(calls.items())},
        latency_ms=latency_ms(first_runs),
        cpu_seconds_per_job={peer.name: round((after.cpu_seconds - usage_before.cpu_seconds) / scenario.jobs, 5)},
        peak_rss_mb={peer.name: round(after.peak_rss_bytes / MB, 1)},
        threads_at_end={peer.name: after.processes},
        emulator_cpu_seconds_per_job=round((emulator.cpu_seconds() - emulator_before) / scenario.jobs, 5),
        stdout_bytes_per_job=0.0,
        stdout_lines_per_job=0.0,
        job_stream_bytes=0.0,
        undeleted=undeleted,
        lost=outcome.lost,
        run_twice=outcome.run_twice,
        ledger_table_used=scenario.ledger,
    )


def _wait_deleted(emulator: Emulator, url: str) -> int:
    """0 once the queue is empty; else, after 30 s, how many messages every job's run left undeleted."""
    try:
        wait_for(lambda: emulator.queue_empty(url), 30, "every message deleted")
    except TimeoutError:
        attributes = emulator.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return sum(int(value) for value in attributes.values())
    return 0


def failed(scenario: Scenario, reason: str) -> ScenarioResult:
    """A scenario that could not run: NaN figures and the reason, so the report says why."""
    nan = math.nan
    return ScenarioResult(
        label=scenario.label,
        pipeline=scenario.pipeline,
        workload=scenario.workload.name,
        concurrency=scenario.concurrency,
        jobs=scenario.jobs,
        rate=None,
        wall_seconds=nan,
        jobs_per_second=nan,
        requests_per_job=nan,
        requests_by_operation={},
        latency_ms={},
        cpu_seconds_per_job={},
        peak_rss_mb={},
        threads_at_end={},
        emulator_cpu_seconds_per_job=nan,
        stdout_bytes_per_job=nan,
        stdout_lines_per_job=nan,
        job_stream_bytes=nan,
        error=reason,
    )
