"""What the benchmark runs: job kinds, the three pipelines, and the scenario plans for quick and full runs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from common.settings import DEFAULT_WORKER_CONCURRENCY, ENV_BATCH_WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class Workload:
    """A job kind, as a user would trigger it."""

    name: str
    job_type: str
    data: Mapping[str, Any]

    def trigger_body(self, number: int) -> str:
        return json.dumps({"trigger": "bench", "jobType": self.job_type, "data": {**self.data, "n": number}})


NOOP: Final = Workload("noop", "main-job-processing", {"userId": "bench", "action": "noop"})
IO_200MS: Final = Workload("io-200ms", "diagnostic-sleep", {"seconds": 0.2})

#: Trigger stage and job stage of each pipeline, as :mod:`bench.launch` targets.
PIPELINES: Final = {
    "fleet": ("main_job", "background_job"),
    "naive": ("naive-triggers", "naive-jobs"),
    "ceiling": ("ceiling-triggers", "ceiling-jobs"),
}
DEFAULT_CONCURRENCY: Final = DEFAULT_WORKER_CONCURRENCY
SCALING_CONCURRENCY: Final = (1, 2, 4, 8, 10, 16)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One measured run of a pipeline over ``jobs`` triggers.

    With ``rate`` unset, triggers are fed closed-loop: never more than ``depth`` sent but unfinished,
    which saturates the pipeline while keeping moto's queues shallow. With ``rate`` set, one trigger
    is sent every ``1/rate`` seconds (light load).
    """

    label: str
    pipeline: str
    workload: Workload
    jobs: int
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    sample_every_seconds: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: Give the fleet a job ledger table (JOB_LEDGER_TABLE); off unless a scenario or ``--ledger`` asks.
    ledger: bool = False
    #: Unfinished jobs the feeder keeps outstanding; ``2 x concurrency + 20`` unless set.
    queue_depth: int | None = None

    @property
    def depth(self) -> int:
        """Enough queued work to keep every slot and both stages busy, and no more."""
        return self.queue_depth or 2 * self.concurrency + 20


@dataclass(frozen=True, slots=True)
class Plan:
    """Job counts for one mode; quick runs in a few minutes, full in about half an hour."""

    noop_jobs: int
    io_jobs: int
    naive_noop_jobs: int
    naive_io_jobs: int
    light_jobs: int
    light_rate: float
    scaling_seconds_of_work: float
    leak_jobs: int
    peer_noop_jobs: int = 200
    peer_io_jobs: int = 150


#: The fleet with its batch window off, side by side with the default: what the window costs and saves.
NO_BATCH_WINDOW: Final[Mapping[str, str]] = {ENV_BATCH_WINDOW_SECONDS: "0"}
QUICK: Final = Plan(600, 400, 150, 40, 60, 5.0, 6.0, 0, peer_noop_jobs=200, peer_io_jobs=150)
FULL: Final = Plan(3000, 2000, 500, 120, 300, 5.0, 20.0, 10_000, peer_noop_jobs=1000, peer_io_jobs=600)
#: The peer table (bench/peers): the fleet's background worker alone, then each peer, on a queue the bench fills.
PEER_PIPELINES: Final = ("fleet-bg", "sqs-workers", "dramatiq", "celery", "pyqs")
#: The ceilings the peers' no-op rows are a share of: SQS only, and SQS plus the fleet's per-job stream.
PEER_CEILINGS: Final = ("peer-ceiling", "peer-ceiling-logs")


def peer_depth(concurrency: int) -> int:
    """Outstanding jobs for the peer table: a full receive batch per slot, as sqs-workers (ten processes that
    each take a batch of ten) and prefetching pools need to stay busy, plus a batch in the queue."""
    return 10 * concurrency + 20


def peer_scenarios(plan: Plan) -> list[Scenario]:
    """The peer table: every pipeline on both jobs at concurrency 10, and the two no-op ceilings."""
    runs = [
        Scenario(f"{pipeline}-noop", pipeline, NOOP, plan.peer_noop_jobs, queue_depth=peer_depth(DEFAULT_CONCURRENCY))
        for pipeline in PEER_CEILINGS
    ]
    for workload, jobs in ((NOOP, plan.peer_noop_jobs), (IO_200MS, plan.peer_io_jobs)):
        runs.extend(
            Scenario(
                f"{pipeline}-{workload.name}", pipeline, workload, jobs, queue_depth=peer_depth(DEFAULT_CONCURRENCY)
            )
            for pipeline in PEER_PIPELINES
        )
    return runs


def scaling_jobs(workload: Workload, concurrency: int, seconds_of_work: float) -> int:
    """Jobs for about ``seconds_of_work`` of run time at ideal scaling, and at least 40."""
    per_slot = 4.0 if workload is IO_200MS else 15.0  # rough jobs/s one slot sustains
    return max(40, int(per_slot * min(concurrency, 8) * seconds_of_work))


def scenarios(plan: Plan) -> list[Scenario]:
    """Every scenario of a run, in the order they run (one at a time: the machine has two cores)."""
    runs = [
        # The headline runs at the defaults: the job ledger on, as Terraform and the local fleet deploy it.
        Scenario("fleet-noop", "fleet", NOOP, plan.noop_jobs, ledger=True),
        Scenario("ceiling-noop", "ceiling", NOOP, plan.noop_jobs),
        Scenario("naive-noop", "naive", NOOP, plan.naive_noop_jobs, concurrency=1),
        Scenario("fleet-noop-no-window", "fleet", NOOP, plan.noop_jobs, env=NO_BATCH_WINDOW, ledger=True),
        Scenario("fleet-io", "fleet", IO_200MS, plan.io_jobs, ledger=True),
        Scenario("naive-io", "naive", IO_200MS, plan.naive_io_jobs, concurrency=1),
        Scenario("fleet-io-no-window", "fleet", IO_200MS, plan.io_jobs, env=NO_BATCH_WINDOW, ledger=True),
        Scenario("fleet-noop-light", "fleet", NOOP, plan.light_jobs, rate=plan.light_rate),
        Scenario("fleet-io-light", "fleet", IO_200MS, plan.light_jobs, rate=plan.light_rate),
        # Beside the headline: the same fleet without JOB_LEDGER_TABLE (what the ledger adds).
        Scenario("fleet-noop-ledger-off", "fleet", NOOP, plan.noop_jobs),
        Scenario("fleet-io-ledger-off", "fleet", IO_200MS, plan.io_jobs),
    ]
    kinds = (IO_200MS, NOOP) if plan.leak_jobs else (IO_200MS,)
    for workload in kinds:
        runs.extend(
            Scenario(
                f"scaling-{workload.name}-c{concurrency}",
                "fleet",
                workload,
                scaling_jobs(workload, concurrency, plan.scaling_seconds_of_work),
                concurrency=concurrency,
            )
            for concurrency in SCALING_CONCURRENCY
        )
    runs.extend(peer_scenarios(plan))
    if plan.leak_jobs:
        runs.append(Scenario("leak-noop", "fleet", NOOP, plan.leak_jobs, sample_every_seconds=2.0))
    return runs
