"""Runs one scenario: fresh queues, the pipeline's two processes, paced triggers, and the readings.

The harness feeds triggers from this process straight to the emulator, so only the pipeline's own
requests are counted. It reads CPU time and request counts just before the first trigger and just
after the last message is deleted, so a figure per job covers whole jobs and nothing else.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench.dynamodb_cost import bill
from bench.emulator import MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT, Emulator, Resources
from bench.processes import ProcessUnderTest, Usage, stop_all, wait_for
from bench.stats import latency_ms, throughput
from bench.workloads import PIPELINES, Scenario
from common import settings as env_names

#: Long polls shorter than the default 20 s only so each scenario stops quickly; they make no
#: difference while messages are flowing, because a receive returns as soon as one is available.
RECEIVE_WAIT_SECONDS: Final = 5
_BATCH: Final = 10
MB: Final = 1024 * 1024


@dataclass(slots=True)
class Sample:
    """The job stage's process at one moment of a long run (the leak check)."""

    jobs: int
    rss_mb: float
    threads: int


@dataclass(slots=True)
class ScenarioResult:
    label: str
    pipeline: str
    workload: str
    concurrency: int
    jobs: int
    rate: float | None
    wall_seconds: float
    jobs_per_second: float
    requests_per_job: float
    requests_by_operation: dict[str, float]
    latency_ms: dict[str, dict[str, float]]
    cpu_seconds_per_job: dict[str, float]
    peak_rss_mb: dict[str, float]
    threads_at_end: dict[str, int]
    emulator_cpu_seconds_per_job: float
    stdout_bytes_per_job: float
    stdout_lines_per_job: float
    job_stream_bytes: float
    samples: list[Sample] = field(default_factory=list)
    #: From the jobs' side effects (peer table): jobs never run, and jobs run more than once.
    lost: int = 0
    run_twice: int = 0
    #: Messages still received-but-undeleted 30 s after every job ran (a peer whose deletes went missing).
    undeleted: int = 0
    #: Whether the fleet had JOB_LEDGER_TABLE set.
    ledger_table_used: bool = False
    #: Why the scenario could not run (a peer that fails against the emulator); its figures are NaN.
    error: str | None = None
    #: DynamoDB request units per job by AWS's billing rules (bench.dynamodb_cost): ``table`` for the
    #: table's writes, ``index:<name>`` per global secondary index; ``writes`` and ``refused_writes``
    #: count item writes and those a condition refused (billed, included in ``table``).
    dynamodb_units_per_job: dict[str, float] = field(default_factory=dict)


def worker_env(emulator: Emulator, resources: Resources, scenario: Scenario) -> dict[str, str]:
    """The fleet's environment for one scenario; JOB_LEDGER_TABLE only when the scenario asks for the ledger."""
    urls = resources.urls
    ledger = {env_names.ENV_JOB_LEDGER_TABLE: emulator.ensure_ledger_table(resources.names)} if scenario.ledger else {}
    return {
        "PATH": "/usr/bin:/bin",
        **emulator.client_env(),
        env_names.ENV_TRIGGER_QUEUE_URL: urls.trigger,
        env_names.ENV_TRIGGER_DLQ_URL: urls.trigger_dlq,
        env_names.ENV_BACKGROUND_QUEUE_URL: urls.background,
        env_names.ENV_BACKGROUND_DLQ_URL: urls.background_dlq,
        env_names.ENV_JOB_LOG_GROUP: resources.names.background_job_log_group,
        env_names.ENV_WORKER_CONCURRENCY: str(scenario.concurrency),
        env_names.ENV_RECEIVE_WAIT_SECONDS: str(RECEIVE_WAIT_SECONDS),
        env_names.ENV_VISIBILITY_TIMEOUT_SECONDS: str(VISIBILITY_TIMEOUT),
        env_names.ENV_MAX_RECEIVE_COUNT: str(MAX_RECEIVE_COUNT),
        env_names.ENV_HEARTBEAT_FILE: "/dev/null",
        **ledger,
        **scenario.env,
    }


class Feeder:
    """Sends the scenario's triggers at a controlled pace."""

    def __init__(self, emulator: Emulator, queue_url: str, scenario: Scenario, finished: Callable[[], int]) -> None:
        self._sqs = emulator.sqs
        self._url = queue_url
        self._scenario = scenario
        self._finished = finished
        self.sent = 0

    def run(self) -> None:
        if self._scenario.rate:
            self._paced(self._scenario.rate)
        else:
            self._closed_loop()

    def _closed_loop(self) -> None:
        """Top up whenever fewer than ``depth`` triggers are unfinished: saturated, yet shallow."""
        total, depth = self._scenario.jobs, self._scenario.depth
        while self.sent < total:
            if self.sent - self._finished() <= depth - _BATCH:
                self._send_batch(min(_BATCH, total - self.sent))
            else:
                time.sleep(0.005)

    def _paced(self, rate: float) -> None:
        """One trigger every ``1/rate`` seconds on a fixed schedule, so a slow send does not drift it."""
        start = time.monotonic()
        while self.sent < self._scenario.jobs:
            delay = start + self.sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._sqs.send_message(QueueUrl=self._url, MessageBody=self._scenario.workload.trigger_body(self.sent))
            self.sent += 1

    def _send_batch(self, size: int) -> None:
        entries = [
            {"Id": str(i), "MessageBody": self._scenario.workload.trigger_body(self.sent + i)} for i in range(size)
        ]
        self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[arg-type]
        self.sent += size


class Sampler:
    """Reads the job stage's RSS and threads every few seconds while a long run goes on (if asked to)."""

    def __init__(self, process: ProcessUnderTest, every_seconds: float | None) -> None:
        self.samples: list[Sample] = []
        self._process = process
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        if self._every:
            self._take()
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._every:
            self._stop.set()
            self._thread.join(timeout=5)
            self._take()

    def _run(self) -> None:
        while not self._stop.wait(self._every or 1.0):
            self._take()

    def _take(self) -> None:
        usage = self._process.usage()
        self.samples.append(Sample(self._process.finished(), round(usage.rss_bytes / MB, 1), usage.threads))


def _ready(process: ProcessUnderTest) -> bool:
    """A stage is ready once it has sent its first ReceiveMessage: imports done, clients built."""
    if process.process.poll() is not None:
        raise RuntimeError(f"{process.target} exited at start-up with status {process.process.returncode}")
    return process.calls().get("ReceiveMessage", 0) > 0


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in after.items() if count > before.get(name, 0)}


def run_scenario(emulator: Emulator, scenario: Scenario, work_dir: Path | None = None) -> ScenarioResult:
    """Run ``scenario`` start to finish and return its figures; the processes are always stopped."""
    resources = emulator.fresh_resources(scenario.label)
    directory = work_dir or Path(tempfile.mkdtemp(prefix="bench-"))
    env = worker_env(emulator, resources, scenario)
    stages = [
        ProcessUnderTest(target, env, directory / f"{scenario.label}-{target}.counts.json")
        for target in PIPELINES[scenario.pipeline]
    ]
    try:
        wait_for(lambda: all(_ready(stage) for stage in stages), 60, f"{scenario.label} to start")
        return _measure(emulator, resources, scenario, stages)
    finally:
        stop_all(stages)


def _measure(
    emulator: Emulator, resources: Resources, scenario: Scenario, stages: list[ProcessUnderTest]
) -> ScenarioResult:
    job_stage = stages[-1]
    calls_before = [stage.calls() for stage in stages]
    usage_before = [stage.usage() for stage in stages]
    stdout_before = [stage.stdout_volume() for stage in stages]
    emulator_before = emulator.cpu_seconds()
    emulator.dynamodb_writes()  # forget anything before the first trigger (there is nothing the workers wrote)
    feeder = Feeder(emulator, resources.urls.trigger, scenario, job_stage.finished)
    started = time.monotonic()
    with Sampler(job_stage, scenario.sample_every_seconds) as sampler:
        feeder.run()
        budget = 120 + scenario.jobs * 0.5
        wait_for(lambda: job_stage.finished() >= scenario.jobs, budget, f"{scenario.label}: all jobs to finish")
        wait_for(lambda: emulator.queue_empty(resources.urls.background), 60, "background deletes")
        wait_for(lambda: emulator.queue_empty(resources.urls.trigger), 60, "trigger deletes")
    wall = time.monotonic() - started
    time.sleep(0.6)  # let each stage publish its final counts (every 0.25 s)
    usage_after = [stage.usage() for stage in stages]
    emulator_cpu = emulator.cpu_seconds() - emulator_before
    stdout = [
        (after[0] - before[0], after[1] - before[1])
        for before, after in zip(stdout_before, (stage.stdout_volume() for stage in stages), strict=True)
    ]
    calls = _sum_calls(_diff(stage.calls(), before) for stage, before in zip(stages, calls_before, strict=True))
    records = job_stage.job_records()
    dynamodb_units = _dynamodb_units(emulator, resources, scenario)
    return ScenarioResult(
        label=scenario.label,
        pipeline=scenario.pipeline,
        workload=scenario.workload.name,
        concurrency=scenario.concurrency,
        jobs=scenario.jobs,
        rate=scenario.rate,
        wall_seconds=round(wall, 2),
        jobs_per_second=round(throughput(records), 2),
        requests_per_job=round(sum(calls.values()) / scenario.jobs, 3),
        requests_by_operation={name: round(count / scenario.jobs, 3) for name, count in sorted(calls.items())},
        latency_ms=latency_ms(records),
        cpu_seconds_per_job=_per_job_cpu(stages, usage_before, usage_after, scenario.jobs),
        peak_rss_mb={
            stage.target: round(after.peak_rss_bytes / MB, 1) for stage, after in zip(stages, usage_after, strict=True)
        },
        threads_at_end={stage.target: after.threads for stage, after in zip(stages, usage_after, strict=True)},
        emulator_cpu_seconds_per_job=round(emulator_cpu / scenario.jobs, 5),
        stdout_bytes_per_job=round(sum(size for size, _ in stdout) / scenario.jobs, 1),
        stdout_lines_per_job=round(sum(lines for _, lines in stdout) / scenario.jobs, 2),
        job_stream_bytes=round(emulator.job_stream_bytes(resources.names.background_job_log_group), 1),
        samples=sampler.samples,
        ledger_table_used=scenario.ledger,
        dynamodb_units_per_job=dynamodb_units,
    )


def _dynamodb_units(emulator: Emulator, resources: Resources, scenario: Scenario) -> dict[str, float]:
    """The scenario's DynamoDB write units per job, from the item writes the emulator recorded."""
    writes = emulator.dynamodb_writes()
    if not scenario.ledger:
        return {}
    table = resources.names.job_ledger_table
    total = bill(writes, {table: emulator.table_schema(table)})
    per_job = {"table": total.total_table_units / scenario.jobs, "writes": total.writes / scenario.jobs}
    per_job |= {f"index:{name}": units / scenario.jobs for name, units in sorted(total.index_units.items())}
    per_job["refused_writes"] = total.refused / scenario.jobs
    return {name: round(value, 3) for name, value in per_job.items()}


def _sum_calls(diffs: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for diff in diffs:
        for name, count in diff.items():
            total[name] = total.get(name, 0) + count
    return total


def _per_job_cpu(
    stages: list[ProcessUnderTest], before: list[Usage], after: list[Usage], jobs: int
) -> dict[str, float]:
    return {
        stage.target: round((end.cpu_seconds - start.cpu_seconds) / jobs, 5)
        for stage, start, end in zip(stages, before, after, strict=True)
    }
