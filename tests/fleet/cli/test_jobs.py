"""Tests for `fleet jobs` (fleet/cli/jobs.py) on moto."""

from __future__ import annotations

import json
from datetime import timedelta

from fleet.cli.clients import Clients

from .conftest import job_start, later, new_job_id


def _table(result) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in result.out.splitlines()[1:]}


def _count_calls(fleet, operation: str) -> list[str]:
    calls: list[str] = []
    fleet.logs.meta.events.register(f"before-call.logs.{operation}", lambda **_: calls.append(operation))
    return calls


def test_jobs_pages_past_50_streams(fleet, now, monkeypatch):
    """120 job streams take three pages of DescribeLogStreams; every job is listed."""
    job_ids = [new_job_id(i, later(now, seconds=i)) for i in range(120)]
    for job_id in job_ids:
        fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=1), attempt=1, jobType="t")
        fleet.job_event(job_id, "job.succeeded", later(job_start(job_id), seconds=2))
    calls = _count_calls(fleet, "DescribeLogStreams")
    monkeypatch.setattr("fleet.cli.clients.Clients.from_environment", _clients_sharing(fleet))

    result = fleet.run("jobs", "--since", "1h")

    rows = _table(result)
    assert 0 == result.code
    assert sorted(job_ids) == sorted(rows)
    assert {"succeeded"} == {row[1] for row in rows.values()}
    assert 3 <= len(calls)


def test_jobs_failed_lists_only_jobs_that_failed_for_good(fleet, now):
    """--failed leaves out succeeded, running and still-retrying jobs."""
    succeeded, failed, retrying = (new_job_id(i, later(now, seconds=i)) for i in range(3))
    fleet.job_event(succeeded, "job.started", later(job_start(succeeded), seconds=1))
    fleet.job_event(succeeded, "job.succeeded", later(job_start(succeeded), seconds=2))
    for job_id, will_retry in ((failed, False), (retrying, True)):
        fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=1))
        fleet.job_event(job_id, "job.failed", later(job_start(job_id), seconds=2), will_retry=will_retry)

    result = fleet.run("jobs", "--failed")

    assert [failed] == list(_table(result))
    assert ["-", "dead", "1", "-"] == _table(result)[failed][:4]  # no duration: only a success has one


def test_jobs_since_leaves_out_older_jobs(fleet, now):
    """A job whose trigger was sent before the window is not listed."""
    recent, old = new_job_id(1, now), new_job_id(2, now - timedelta(hours=3))
    for job_id in (recent, old):
        fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=1))

    result = fleet.run("jobs", "--since", "1h")

    assert [recent] == list(_table(result))
    assert ["-", "running", "1", "-"] == _table(result)[recent][:4]


def test_jobs_json_is_machine_readable(fleet, now):
    """--json gives each job's id, status, attempts and duration (the successful run's, as in the ledger)."""
    job_id = new_job_id(1, now)
    fleet.job_event(job_id, "job.started", later(job_start(job_id), seconds=1), jobType="diagnostic-sleep")
    fleet.job_event(job_id, "job.succeeded", later(job_start(job_id), milliseconds=2500), duration_ms=1500)

    [job] = json.loads(fleet.run("jobs", "--json").out)

    assert (job_id, "succeeded", 1, "diagnostic-sleep", 1500.0) == (
        job["job_id"],
        job["status"],
        job["attempts"],
        job["job_type"],
        job["duration_ms"],
    )


def test_no_jobs_says_so(fleet):
    """An empty window prints a sentence rather than an empty table."""
    result = fleet.run("jobs")

    assert (0, "no jobs in this window\n") == (result.code, result.out)


def _clients_sharing(fleet):
    """Clients whose logs client is the test's, so the test's event hooks see the CLI's calls."""
    real = Clients.from_environment

    def build() -> Clients:
        clients = real()
        return Clients(
            sqs=clients.sqs, logs=fleet.logs, cloudwatch=clients.cloudwatch, ecs=clients.ecs, dynamodb=clients.dynamodb
        )

    return build
