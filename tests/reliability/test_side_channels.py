"""Issue 16: a worker whose side channels fail (stdout, the heartbeat file) still settles every job exactly once.

Each scenario runs the real ``python -m background_job`` against the local fleet and observes the result
from outside: every job's own stream (CloudWatch Logs, which is not stdout), the queue and its DLQ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from contextlib import suppress
from pathlib import Path

from tests.reliability.harness import QUICK_SETTINGS, Fleet, WorkerProcess, events_named, executions, running_fleet
from tests.reliability.report import record
from tests.reliability.test_worker_lifecycle import _send_jobs
from tests.waiting import wait_until

JOBS = 5


def _runs(fleet: Fleet, job_id: str, event: str) -> int:
    return sum(1 for e in fleet.job_stream(job_id) if e["message"] == event)


def _all_succeeded(fleet: Fleet, job_ids: list[str]) -> bool:
    return all(_runs(fleet, job_id, "job.succeeded") >= 1 for job_id in job_ids)


def _settled(fleet: Fleet, job_ids: list[str]) -> dict[str, tuple[int, int]]:
    """(job.started, job.succeeded) per job, once every job succeeded and the queue is empty."""
    wait_until(lambda: _all_succeeded(fleet, job_ids), timeout=90, interval=0.5, what="every job's job.succeeded")
    wait_until(lambda: fleet.depth("background") == (0, 0), timeout=60, interval=0.5, what="every job deleted")
    return {job_id: (_runs(fleet, job_id, "job.started"), _runs(fleet, job_id, "job.succeeded")) for job_id in job_ids}


def test_a_worker_whose_stdout_reader_has_exited_runs_and_deletes_every_job_once() -> None:
    """stdout is a pipe nobody reads: N jobs each run once, are deleted, nothing is dead-lettered, no crash."""
    with running_fleet("broken-stdout", background_workers=0) as fleet:
        read_end, write_end = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "background_job"],
            env=fleet.worker_env(**QUICK_SETTINGS),
            stdout=write_end,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        os.close(write_end)
        os.close(read_end)  # the reader has exited: every write to stdout is EPIPE
        try:
            job_ids = list(_send_jobs(fleet, [f"pipe-{n}" for n in range(JOBS)], seconds=0).values())
            runs = _settled(fleet, job_ids)
            alive = process.poll() is None
            dlq = fleet.drain("background_dlq")
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        process.stderr.close()

    record("broken_stdout", messages_in=JOBS, runs=sorted(set(runs.values())), exit_code=exit_code, dlq=len(dlq))
    assert {job_id: (1, 1) for job_id in job_ids} == runs
    assert alive
    assert 0 == exit_code
    assert [] == dlq
    assert 1 == stderr.count('"channel": "stdout"'), stderr


def test_a_worker_with_an_unwritable_heartbeat_file_runs_and_deletes_every_job_once() -> None:
    """HEARTBEAT_FILE cannot be created: N jobs each run once, are deleted, the failure is reported once."""
    not_a_directory = Path(tempfile.mkdtemp(prefix="reliability-")) / "a-file"
    not_a_directory.write_text("")
    with running_fleet("broken-heartbeat", background_workers=0) as fleet:
        worker = WorkerProcess.start(
            "background_job",
            fleet.worker_env(**QUICK_SETTINGS, HEARTBEAT_FILE=str(not_a_directory / "worker.heartbeat")),
        )
        try:
            job_ids = list(_send_jobs(fleet, [f"heartbeat-{n}" for n in range(JOBS)], seconds=0).values())
            runs = _settled(fleet, job_ids)
            alive = worker.process.poll() is None
            dlq = fleet.drain("background_dlq")
            exit_code = worker.stop()
        finally:
            worker.kill()

    assert {job_id: 1 for job_id in job_ids} == dict(executions(worker.lines()))
    assert {job_id: (1, 1) for job_id in job_ids} == runs
    assert alive
    assert 0 == exit_code
    assert [] == dlq
    assert 1 == len(events_named(worker.lines(), "side_channel.failed", channel="heartbeat_file"))


def _emulator_pids(port: str) -> list[int]:
    """The fleet's emulator process (it runs in its own session), found by its command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"fleet.local.emulator" in argv and port.encode() in argv:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def test_kill_9_of_the_supervisor_with_jobs_in_flight_leaves_no_orphan_running_blind() -> None:
    """The fleet's supervisor is SIGKILLed mid-job: its workers and emulator go with it, so no worker runs
    on with a broken stdout (the five-duplicate-runs failure of issue 16); (a) covers settling blind."""
    with running_fleet("supervisor-kill", proxy=False, new_session=True) as fleet:
        port = fleet.endpoint.rsplit(":", 1)[-1]
        _send_jobs(fleet, [f"orphan-{n}" for n in range(JOBS)], seconds=3)
        wait_until(lambda: fleet.depth("background")[1] > 0, timeout=30, what="jobs in flight")
        children = [*fleet.pids("background-job-1"), *fleet.pids("main-job-1"), *_emulator_pids(port)]
        os.kill(fleet.process.pid, signal.SIGKILL)
        # Reap it first: the children's PDEATHSIG fires as it exits, before it can be waited for, and the
        # harness tells a killed supervisor from a failed one by its exit status.
        fleet.process.wait(timeout=10)
        wait_until(
            lambda: not any(_alive(pid) for pid in children), timeout=10, what="every child of the supervisor gone"
        )

    record("supervisor_kill_9", messages_in=JOBS, children=len(children), survivors=0)
    assert 3 <= len(children)  # both workers and the emulator were watched
