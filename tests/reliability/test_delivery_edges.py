"""A delivery's edges on the real local fleet (issue 32): a finished job is recorded at once, settled
before its worker exits, never started from a stale buffer, and its visibility is kept whatever
DynamoDB does.

Runs are counted from diagnostic-sleep's effect file (``DIAGNOSTIC_EFFECTS_FILE``: one line per run
that reached its end), not from log lines. Slow AWS answers come from ``tests.reliability.slowed_worker``
(a botocore ``before-send`` delay in a hand-started worker's real client stack).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common.job_ids import job_id_for_message
from common.ledger.schema import JobStatus
from common.messages import BackgroundJob
from tests.reliability.harness import (
    QUICK_SETTINGS,
    Fleet,
    WorkerProcess,
    effects,
    running_fleet,
)
from tests.reliability.report import record
from tests.waiting import wait_until

EFFECTS = "DIAGNOSTIC_EFFECTS_FILE"
SLOWED_WORKER = "tests.reliability.slowed_worker"


def _effects_file() -> Path:
    return Path(tempfile.mkdtemp(prefix="delivery-edges-")) / "effects"


def _trigger(name: str, **data: Any) -> str:
    return json.dumps({"trigger": name, "jobType": "diagnostic-sleep", "data": data})


def _settled(fleet: Fleet) -> bool:
    return fleet.depth("trigger") == (0, 0) and fleet.depth("background") == (0, 0)


def _worker_env(fleet: Fleet, effects_file: Path, **overrides: str) -> dict[str, str]:
    settings = {**QUICK_SETTINGS, "JOB_LEDGER_TABLE": fleet.names.job_ledger_table, EFFECTS: str(effects_file)}
    return fleet.worker_env(**{**settings, **overrides})


def test_a_worker_killed_50_ms_after_a_job_returns_does_not_run_it_again() -> None:
    """kill -9 just after the job's effect: its `succeeded` is already in the ledger, the redelivery is skipped."""
    path = _effects_file()
    with running_fleet("edges-kill", settings={EFFECTS: str(path)}) as fleet:
        fleet.send("trigger", [_trigger("kill-after-return", seconds=0.5)])
        [job_id] = wait_until(lambda: effects(path), timeout=60, interval=0.005, what="the job's effect")
        time.sleep(0.05)  # the scenario's 50 ms between the job returning and the kill, not a wait for anything
        [victim] = fleet.pids("background-job-1")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(fleet.pids("background-job-1")) == 2, timeout=30, what="the supervisor's restart")
        wait_until(lambda: _settled(fleet), timeout=60, what="the redelivery skipped and deleted")
        item = fleet.ledger_items()[job_id]

    assert {job_id: 1} == effects(path)
    assert (JobStatus.SUCCEEDED, "1") == (item["status"], item["attempts"])


def test_a_ledger_lease_write_that_hangs_15_s_does_not_stop_the_visibility_heartbeat() -> None:
    """The first lease write of a 25 s job answers after 15 s (visibility 10 s): one run, extended all along."""
    path = _effects_file()
    with running_fleet("edges-lease-hang", settings={EFFECTS: str(path)}, background_workers=0) as fleet:
        worker = WorkerProcess.start(SLOWED_WORKER, _worker_env(fleet, path, SLOW_LEASE_WRITE_SECONDS="15"))
        try:
            fleet.send("trigger", [_trigger("long", seconds=25)])
            wait_until(lambda: effects(path), timeout=90, interval=0.5, what="the long job's end")
            wait_until(lambda: _settled(fleet), timeout=30, what="its delete")
        finally:
            assert 0 == worker.stop()

    [job_id] = effects(path)
    assert {job_id: 1} == effects(path)
    assert worker.events("test.call_held")  # the hang was injected
    assert [] == worker.events("visibility.extend_failed")
    assert len(worker.events("visibility.extended")) >= 4  # about every 5 s of the 25 s job


def test_sigterm_while_a_finished_job_s_log_put_is_slow_settles_it_before_the_process_exits() -> None:
    """The job returned, its PutLogEvents takes 8 s, the grace period is 0.5 s: deleted and `succeeded` at exit."""
    path = _effects_file()
    with running_fleet("edges-sigterm", settings={EFFECTS: str(path)}, background_workers=0) as fleet:
        env = _worker_env(fleet, path, SLOW_PUT_LOG_EVENTS_SECONDS="8", SHUTDOWN_GRACE_SECONDS="0.5")
        worker = WorkerProcess.start(SLOWED_WORKER, env)
        try:
            fleet.send("trigger", [_trigger("slow-log", seconds=0.5)])
            [job_id] = wait_until(lambda: effects(path), timeout=60, interval=0.01, what="the job's effect")
            worker.terminate()
            status = worker.wait(timeout=30)
            at_exit = fleet.depth("background")
            item = fleet.ledger_items()[job_id]
        finally:
            worker.kill()

    [drained] = worker.events("worker.drained")
    assert (0, (0, 0), 0) == (status, at_exit, drained["still_owned"])
    assert JobStatus.SUCCEEDED == item["status"]
    assert {job_id: 1} == effects(path)


def _background_job(number: int, seconds: float) -> BackgroundJob:
    return BackgroundJob(
        job_id_for_message(f"edges-{number}", 1_795_300_000_000 + number),
        "diagnostic-sleep",
        f"corr-{number}",
        {"trigger": "edges", "data": {"seconds": seconds}},
        "2026-12-04T10:00:00Z",
    )


def _send_background(fleet: Fleet, jobs: list[BackgroundJob]) -> None:
    entries = [
        {"Id": str(index), "MessageBody": job.to_body(), "MessageAttributes": job.message_attributes()}
        for index, job in enumerate(jobs)
    ]
    response = fleet.sqs.send_message_batch(QueueUrl=fleet.queues["background"], Entries=entries)
    assert not response.get("Failed"), response["Failed"]


def _claimed(fleet: Fleet, job_ids: set[str]) -> int:
    items = fleet.ledger_items()
    return sum(1 for job_id, item in items.items() if job_id in job_ids and item.get("status") == "running")


def test_a_worker_frozen_with_a_full_buffer_runs_nothing_another_worker_finished() -> None:
    """SIGSTOP past the visibility timeout with messages received ahead; after SIGCONT none of those run."""
    path = _effects_file()
    settings = {EFFECTS: str(path), "WORKER_CONCURRENCY": "2"}
    with running_fleet("edges-freeze", settings=settings) as fleet:
        warm_up = [_background_job(n, 0.2) for n in range(4)]  # the pool learns its jobs are short
        _send_background(fleet, warm_up)
        wait_until(lambda: len(effects(path)) == 4, timeout=60, what="the warm-up jobs")
        wait_until(lambda: fleet.depth("background") == (0, 0), timeout=30, what="their deletes")
        long_jobs = [_background_job(10 + n, 4.0) for n in range(2)]
        _send_background(fleet, long_jobs)
        wait_until(lambda: fleet.depth("background") == (0, 2), timeout=30, what="both slots busy")
        short_jobs = [_background_job(20 + n, 0.2) for n in range(6)]
        _send_background(fleet, short_jobs)
        # Received ahead and claimed (the claim comes just before the buffer): waiting there for a slot.
        short_ids = {job.job_id for job in short_jobs}
        wait_until(lambda: _claimed(fleet, short_ids) >= 2, timeout=10, interval=0.01, what="a full buffer")
        [frozen] = fleet.pids("background-job-1")
        os.kill(frozen, signal.SIGSTOP)
        other = WorkerProcess.start("background_job", _worker_env(fleet, path))
        try:
            wait_until(
                lambda: short_ids <= effects(path).keys(), timeout=60, interval=0.2, what="the other worker's runs"
            )
        finally:
            os.kill(frozen, signal.SIGCONT)
        long_ids = {job.job_id for job in long_jobs}
        try:
            # Each long job ran on the other worker and, resumed, ends here too: a job frozen while it ran is
            # the one case that runs twice. As each ends it frees a slot, where a stale buffer would start.
            wait_until(
                lambda: all(effects(path)[job_id] == 2 for job_id in long_ids) and _settled(fleet),
                timeout=60,
                what="the resumed long jobs to end and every message to settle",
            )
        finally:
            other.stop()
        runs = effects(path)

    record("freeze_with_full_buffer", buffered_runs=sum(runs[job_id] for job_id in short_ids), buffered=len(short_ids))
    assert {job.job_id: 1 for job in short_jobs} == {job_id: runs[job_id] for job_id in short_ids}


class EffectTimes:
    """When each run's effect line appeared in the effect file, polled from a thread every 5 ms.

    A poll can lag the write by a few milliseconds, so a kill is timed only after ``catch_up``: every line
    written before the kill then has a time no later than the kill's (a run whose effect came just
    before its worker died must never look as if it came after).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="effect-times", daemon=True)

    def __enter__(self) -> EffectTimes:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.catch_up()

    def catch_up(self) -> None:
        """Time every line the file holds now that no earlier read saw."""
        with self._lock:
            lines = self.path.read_text().split() if self.path.exists() else []
            now = time.time()
            self.seen.extend((job_id, now) for job_id in lines[len(self.seen) :])

    def first(self, job_id: str) -> float:
        return min(seen for seen_id, seen in self.seen if seen_id == job_id)


#: A job's return (and with it its ledger write) follows its effect by milliseconds; the old code's
#: `succeeded` came 0.5-1.5 s after the return. A run killed within this bound of its effect counts
#: as still running when its worker died: the one window no design closes.
STILL_RUNNING_SECONDS = 0.3
JOBS = 300


def _kill_and_go_on(fleet: Fleet, times: EffectTimes, label: str) -> float:
    """Once 20 more jobs ran, kill -9 the worker ``label``; return the kill's time once the supervisor restarted it.

    The kill's time is taken after the effect times catch up, so no effect written before it is timed after it.
    """
    path = times.path
    done = len(effects(path))
    wait_until(lambda: len(effects(path)) >= done + 20, timeout=60, what="20 more jobs")
    pids = fleet.pids(label)
    os.kill(pids[-1], signal.SIGKILL)
    times.catch_up()
    killed_at = time.time()
    wait_until(lambda: len(fleet.pids(label)) == len(pids) + 1, timeout=30, what=f"{label}'s restart")
    return killed_at


def test_repeated_kill_9_during_short_jobs_runs_twice_only_jobs_still_running_at_the_kill() -> None:
    """300 half-second jobs on two workers, six kill -9s: a job runs twice only if killed as it ran."""
    path = _effects_file()
    settings = {EFFECTS: str(path), "WORKER_CONCURRENCY": "4"}
    with running_fleet("edges-kills", settings=settings, background_workers=2) as fleet, EffectTimes(path) as times:
        fleet.send("trigger", [_trigger(f"short-{n}", seconds=0.5) for n in range(JOBS)])
        kills = [_kill_and_go_on(fleet, times, f"background-job-{1 + kill % 2}") for kill in range(6)]
        wait_until(lambda: len(effects(path)) == JOBS and _settled(fleet), timeout=120, what="every job settled")
        dead_lettered = fleet.depth("background_dlq")
    runs = effects(path)

    twice = sorted(job_id for job_id, count in runs.items() if count > 1)
    killed_as_they_ran = [
        job_id for job_id in twice if any(0 <= kill - times.first(job_id) <= STILL_RUNNING_SECONDS for kill in kills)
    ]
    record("kill_9_during_short_jobs", jobs=len(runs), kills=len(kills), ran_twice=len(twice))
    assert JOBS == len(runs)
    assert twice == killed_as_they_ran
    assert (0, 0) == dead_lettered
