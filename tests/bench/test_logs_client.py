"""``python -m bench.logs_client`` drives both callers through real requests (counted, never timed)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from bench.client_probe import probe_emulator
from bench.logs_client import BOTOCORE, SIGNED, job_cpu_ms, measure, signed_caller


@pytest.fixture
def emulator() -> Iterator[tuple[str, boto3.session.Session]]:
    with probe_emulator() as (endpoint, session):
        yield endpoint, session


def test_the_logs_client_probe_reports_cpu_for_both_callers() -> None:
    figures = measure(jobs=3, rounds=2)
    assert sorted(figures) == [BOTOCORE, SIGNED]
    assert all(cpu > 0 for cpu in figures.values())


def test_the_signed_caller_writes_the_streams_and_events_it_is_timed_on(emulator) -> None:
    # A probe that timed refused requests would report a floor nobody can reach.
    endpoint, session = emulator
    logs = session.client("logs", endpoint_url=endpoint)
    logs.create_log_group(logGroupName="probe")
    job_cpu_ms(signed_caller(endpoint, session), "probe", jobs=2)
    streams = [stream["logStreamName"] for stream in logs.describe_log_streams(logGroupName="probe")["logStreams"]]
    events = logs.get_log_events(logGroupName="probe", logStreamName="job-streams/probe/000001")["events"]
    logs.close()
    assert streams == ["job-streams/probe/000000", "job-streams/probe/000001"]
    assert [event["message"] for event in events] == ['{"event":"job.succeeded","level":"info"}']


def test_the_signed_caller_raises_on_an_error_answer(emulator) -> None:
    put = signed_caller(*emulator)
    events = [{"timestamp": 1, "message": "x"}]
    with pytest.raises(RuntimeError, match="HTTP 400"):
        put("PutLogEvents", {"logGroupName": "missing", "logStreamName": "missing", "logEvents": events})
