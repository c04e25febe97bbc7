"""Scenario 5: CloudWatch Logs is down for a while (every Logs call answers 503 at the proxy)."""

from __future__ import annotations

import json

from common import metrics
from tests.reliability.harness import Fleet, emf_total, events_named, executions, job_ids_by_message, running_fleet
from tests.reliability.report import record
from tests.waiting import wait_until

OUTAGE_JOBS = 5
OUTAGE_RULES = [{"operation": "logs:*", "kind": "unavailable", "rate": 1.0}]


def _run_jobs(fleet: Fleet, count: int, label: str) -> list[str]:
    """Send ``count`` triggers and wait until each job has succeeded; returns their jobIds."""
    ids = fleet.send("trigger", [json.dumps({"trigger": label, "data": {"n": i}}) for i in range(count)])

    def done() -> list[str] | None:
        derived = job_ids_by_message(fleet.main_job_log())
        if not set(ids) <= set(derived):
            return None
        job_ids = [next(iter(derived[m])) for m in ids]
        runs = executions(fleet.background_log())
        return job_ids if all(runs[j] for j in job_ids) else None

    return wait_until(done, timeout=60, interval=0.5, what=f"{label} jobs to succeed")


def _delivered(fleet: Fleet, job_id: str) -> bool:
    return "job.succeeded" in [e["message"] for e in fleet.job_stream(job_id)]


def test_jobs_complete_during_a_logs_outage_and_delivery_resumes() -> None:
    """Jobs finish, their events reach stdout with a warning, the metric counts them, and streams come back."""
    with running_fleet("outage") as fleet:
        [before] = _run_jobs(fleet, 1, "before")
        wait_until(lambda: _delivered(fleet, before), timeout=30, what="a delivered stream before the outage")
        fleet.set_faults(OUTAGE_RULES)
        during = _run_jobs(fleet, OUTAGE_JOBS, "during")
        logs_faults = sum(v for k, v in fleet.proxy_stats()["faults"].items() if k.startswith("CreateLogStream"))
        fleet.set_faults([])
        # The half-open breaker lets one job through as a probe once its backoff (1 s, doubling up to the
        # cooldown) has passed; run one job at a time until a probe's stream arrives.
        after: list[str] = []

        def resumed() -> bool:
            [job_id] = _run_jobs(fleet, 1, "after")
            after.append(job_id)
            try:
                return wait_until(lambda: _delivered(fleet, job_id), timeout=5, what="the probe's stream")
            except AssertionError:
                return False

        wait_until(resumed, timeout=120, interval=1, what="delivery to resume after the outage")
        # The metric is aggregated (common/metrics.py): its line comes within one flush interval.
        expected_failures = OUTAGE_JOBS + len(after) - 1
        wait_until(
            lambda: emf_total(fleet.background_log(), metrics.JOB_LOG_DELIVERY_FAILURES) >= expected_failures,
            timeout=30,
            interval=1,
            what="the delivery-failure metric's line",
        )
        log = fleet.background_log()
        streams = {job_id: fleet.job_stream(job_id) for job_id in during}
        delivered = [fleet.job_stream(job_id) for job_id in (before, after[-1])]

    fell_back = events_named(log, "job_log.unavailable")
    undelivered = events_named(log, "job_log.undelivered")
    failures = emf_total(log, metrics.JOB_LOG_DELIVERY_FAILURES)
    record(
        "logs_outage",
        messages_in=1 + OUTAGE_JOBS + len(after),
        jobs_during_outage=OUTAGE_JOBS,
        jobs_succeeded=sum(executions(log).values()),
        create_log_stream_faults=logs_faults,
        jobs_on_stdout=len(fell_back),
        undelivered_event_lines=len(undelivered),
        delivery_failure_metric=failures,
        probes_until_resumed=len(after),
    )
    assert {job_id: 1 for job_id in [before, *during, *after]} == dict(executions(log))
    assert all(not events for events in streams.values())
    # Each delivered stream holds each event once: a retried PutLogEvents never duplicates.
    for events in delivered:
        assert ["job.started", "job.step", "job.step", "job.succeeded"] == [e["message"] for e in events]
    for job_id in during:
        mine = [line["job_event"] for line in undelivered if line["job_event"]["jobId"] == job_id]
        assert ["job.started", "job.step", "job.step", "job.succeeded"] == [e["message"] for e in mine]
        assert {"warning"} == {line["level"] for line in undelivered}
    # Every job that fell back to stdout is counted once; the last probe was delivered, so it is not.
    assert len(fell_back) == failures == OUTAGE_JOBS + len(after) - 1
    assert logs_faults > 0
