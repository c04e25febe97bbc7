"""The job log under faults, and the edges of SQS's limits on the real local fleet (issue 32, items 7, 8, 9a).

Runs are counted from diagnostic-sleep's effect file (one line per finished run), not from log lines; a
job's events count as kept when its own stream holds them, and as findable when the worker's stdout
(the background service's log group, where ``fleet job`` looks next) holds them as ``job_log.undelivered``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.messages import MAX_TRIGGER_BYTES
from fleet.local.aws_proxy import FAULT_KINDS
from tests.reliability.harness import QUICK_SETTINGS, Fleet, WorkerProcess, effects, running_fleet
from tests.reliability.report import record
from tests.waiting import wait_until

EFFECTS_ENV = "DIAGNOSTIC_EFFECTS_FILE"
#: What diagnostic-sleep logs for a run: a stream that holds these is the job's own, whole.
JOB_EVENTS = frozenset({"job.started", "job.step", "job.succeeded"})
FAULTY_JOBS = 300
SLOW_JOBS = 96
MAX_OUTSTANDING = 40


def _trigger(label: str, **data: Any) -> str:
    return json.dumps({"trigger": label, "jobType": "diagnostic-sleep", "data": {"seconds": 0, **data}})


def _send_paced(fleet: Fleet, bodies: list[str]) -> None:
    """Waves of ten, never more than MAX_OUTSTANDING queued (moto's SQS is O(depth))."""
    for start in range(0, len(bodies), 10):
        wait_until(
            lambda: sum(fleet.depth("trigger")) + sum(fleet.depth("background")) < MAX_OUTSTANDING,
            timeout=120,
            interval=0.5,
            what="the fleet to work the backlog down",
        )
        fleet.send("trigger", bodies[start : start + 10])


def _ran(path: Path, count: int, timeout: float = 240) -> list[str]:
    """The job IDs of ``count`` finished runs, once the effect file holds that many jobs."""

    def enough() -> list[str] | None:
        runs = effects(path)
        return sorted(runs) if len(runs) >= count else None

    return wait_until(enough, timeout=timeout, interval=0.5, what=f"{count} jobs to run")


def _on_stdout(lines: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """jobId -> the event names the worker wrote to stdout because Logs did not take them."""
    found: dict[str, set[str]] = {}
    for line in lines:
        if line.get("event") == "job_log.undelivered":
            found.setdefault(str(line["job_event"]["jobId"]), set()).add(str(line["job_event"]["message"]))
    return found


def _in_stream(fleet: Fleet, job_id: str) -> set[str]:
    return {str(event["message"]) for event in fleet.job_stream(job_id)}


def test_five_percent_logs_faults_leave_99_percent_of_jobs_their_own_stream(tmp_path: Path) -> None:
    """Throttles, 503s and resets on 5 % of the workers' Logs calls: >= 99 % whole streams, the rest on stdout."""
    path = tmp_path / "effects"
    rules = [{"operation": "logs:*", "kind": kind, "rate": 0.05 / len(FAULT_KINDS)} for kind in FAULT_KINDS]
    with running_fleet("log-faults", settings={EFFECTS_ENV: str(path)}) as fleet:
        fleet.set_faults(rules)
        _send_paced(fleet, [_trigger("faulty", n=i) for i in range(FAULTY_JOBS)])
        job_ids = _ran(path, FAULTY_JOBS)

        def accounted() -> tuple[set[str], dict[str, set[str]]] | None:
            whole = {job_id for job_id in job_ids if JOB_EVENTS <= _in_stream(fleet, job_id)}
            stdout = _on_stdout(fleet.background_log())
            rest = [job_id for job_id in job_ids if job_id not in whole]
            if all(JOB_EVENTS <= _in_stream(fleet, job_id) | stdout.get(job_id, set()) for job_id in rest):
                return whole, stdout
            return None

        whole, stdout = wait_until(accounted, timeout=60, interval=1, what="every job's events, stream or stdout")
        faults = sum(fleet.proxy_stats()["faults"].values())

    record(
        "log_faults",
        jobs=len(job_ids),
        whole_streams=len(whole),
        events_on_stdout_jobs=len(stdout),
        logs_faults_injected=faults,
    )
    assert len(job_ids) == FAULTY_JOBS
    assert faults > 0
    assert len(whole) >= 0.99 * FAULTY_JOBS, f"{FAULTY_JOBS - len(whole)} jobs lost their stream"


def test_slow_logs_under_load_keeps_the_shipper_bounded_and_loses_nothing_at_exit(tmp_path: Path) -> None:
    """0.5 s Logs calls while short jobs pour in: the backlog stays within its bound, and every job's events
    are in its stream or on stdout after the worker's SIGTERM exit, none left in a queue that died with it."""
    path = tmp_path / "effects"
    with running_fleet("slow-logs", background_workers=0) as fleet:
        fleet.set_faults([{"operation": "logs:*", "kind": "delay", "seconds": 0.5, "rate": 1.0}])
        worker = WorkerProcess.start("background_job", fleet.worker_env(**QUICK_SETTINGS, **{EFFECTS_ENV: str(path)}))
        try:
            fleet.send("trigger", [_trigger("slow", n=i) for i in range(SLOW_JOBS)])
            job_ids = _ran(path, SLOW_JOBS)
            assert 0 == worker.stop(timeout=60)
        finally:
            worker.kill()
        stdout = _on_stdout(worker.lines())
        streams = {job_id: _in_stream(fleet, job_id) for job_id in job_ids}
        closed_lines = worker.events("job_log.shipper_closed")

    lost = [job_id for job_id in job_ids if not JOB_EVENTS <= streams[job_id] | stdout.get(job_id, set())]
    assert [] == lost, f"{len(lost)} of {len(job_ids)} jobs' events are in neither their stream nor stdout"
    [closed] = closed_lines

    record(
        "slow_logs",
        jobs=len(job_ids),
        whole_streams=sum(JOB_EVENTS <= events for events in streams.values()),
        jobs_with_events_on_stdout=len(stdout),
        backlog_high_events=closed["backlog_high_events"],
        unshipped_events_to_stdout_at_exit=closed["unshipped_events_to_stdout"],
    )
    assert closed["backlog_high_events"] <= closed["backlog_max_events"]
    assert closed["backlog_high_bytes"] <= closed["backlog_max_bytes"]


def test_a_trigger_at_the_trigger_queues_size_limit_runs(tmp_path: Path) -> None:
    """The largest trigger SQS accepts (multi-byte text, so re-encoding would grow it) runs once; one byte more
    is refused by SQS at the send, with its own error, instead of being accepted and quarantined later."""
    path = tmp_path / "effects"
    with running_fleet("size-limit", settings={EFFECTS_ENV: str(path)}) as fleet:
        empty = _trigger("limit", blob="")
        room = MAX_TRIGGER_BYTES - len(empty.encode())
        body = empty.replace('"blob": ""', '"blob": "' + "é" * (room // 2) + "x" * (room % 2) + '"')
        assert MAX_TRIGGER_BYTES == len(body.encode())
        with pytest.raises(ClientError) as refused:
            fleet.sqs.send_message(QueueUrl=fleet.queues["trigger"], MessageBody=body + " ")
        fleet.sqs.send_message(QueueUrl=fleet.queues["trigger"], MessageBody=body)

        [job_id] = _ran(path, 1, timeout=60)
        trigger_dlq = fleet.drain("trigger_dlq")

    assert "InvalidParameterValue" == refused.value.response["Error"]["Code"]
    assert ({job_id: 1}, []) == (dict(effects(path)), trigger_dlq)


def test_a_poison_attribute_send_is_refused_with_awss_error_and_its_neighbours_run(tmp_path: Path) -> None:
    """An unpaired surrogate in an attribute: SendMessage gets a 400, the batch entry fails alone, nine run."""
    path = tmp_path / "effects"
    poison = {"note": {"DataType": "String", "StringValue": "bad \ud800"}}
    with running_fleet("poison-attribute", settings={EFFECTS_ENV: str(path)}) as fleet:
        url = fleet.queues["trigger"]
        with pytest.raises(ClientError) as refused:
            fleet.sqs.send_message(QueueUrl=url, MessageBody=_trigger("poison"), MessageAttributes=poison)
        entries: list[dict[str, Any]] = [{"Id": str(i), "MessageBody": _trigger("neighbour", n=i)} for i in range(10)]
        entries[3]["MessageAttributes"] = poison
        batch = fleet.sqs.send_message_batch(QueueUrl=url, Entries=entries)

        ran = _ran(path, 9, timeout=60)
        dlqs = (fleet.drain("trigger_dlq"), fleet.drain("background_dlq"))

    assert ("InvalidParameterValue", 400) == (
        refused.value.response["Error"]["Code"],
        refused.value.response["ResponseMetadata"]["HTTPStatusCode"],
    )
    assert [("3", "InvalidParameterValue", True)] == [(f["Id"], f["Code"], f["SenderFault"]) for f in batch["Failed"]]
    assert (9, ([], [])) == (len(ran), dlqs)
