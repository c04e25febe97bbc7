"""Tests for `fleet job` and `fleet jobs` reading the job ledger (fleet/cli/ledger.py) on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from common.ledger.days import days_in, queued_day, utc_day
from common.ledger.schema import (
    ATTR_ATTEMPTS,
    ATTR_DEAD_REASON,
    ATTR_DURATION_MS,
    ATTR_FAILED_DAY,
    ATTR_JOB_ID,
    ATTR_JOB_TYPE,
    ATTR_LAST_ERROR,
    ATTR_LEASE_UNTIL,
    ATTR_QUEUED_DAY,
    ATTR_RESULT,
    ATTR_STATUS,
    ATTR_UPDATED_AT,
    ATTR_WORKER_ID,
    LEGACY_RETRYING,
    JobStatus,
)
from fleet.cli import clients
from fleet.local.provision import provision_job_ledger

from .conftest import REGION, later, new_job_id


def _iso(moment) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def table(fleet):
    """The ledger table exactly as the contract defines it, under the deployment's name."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    name = fleet.names.job_ledger_table
    provision_job_ledger(dynamodb, name)

    def put(job_id: str, status: str, updated, *, indexed: bool = True, **extra) -> None:
        """An item as the workers write it: queuedDay from the job ID, failedDay when dead (``indexed``)."""
        item = {
            ATTR_JOB_ID: {"S": job_id},
            ATTR_STATUS: {"S": str(status)},
            ATTR_UPDATED_AT: {"S": _iso(updated)},
            ATTR_JOB_TYPE: {"S": "diagnostic-sleep"},
            ATTR_ATTEMPTS: {"N": "1"},
            **extra,
        }
        if indexed:
            item[ATTR_QUEUED_DAY] = {"S": queued_day(job_id, updated.timestamp())}
        if indexed and status == JobStatus.DEAD:
            item[ATTR_FAILED_DAY] = {"S": utc_day(updated.timestamp())}
        dynamodb.put_item(TableName=name, Item=item)

    return put


def _count_calls(monkeypatch):
    """Record the DynamoDB operations the CLI's own client makes."""
    seen: list[str] = []
    original = clients.Clients.from_environment.__func__

    def counted(cls):
        built = original(cls)
        built.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: seen.append(model.name))
        return built

    monkeypatch.setattr(clients.Clients, "from_environment", classmethod(counted))
    return seen


def test_job_reads_status_result_and_worker_from_the_ledger(fleet, table, now, monkeypatch):
    """fleet job shows the ledger item's status, attempts, worker, duration and result: one GetItem."""
    job_id = new_job_id(1, now)
    table(
        job_id,
        JobStatus.SUCCEEDED,
        later(now, seconds=3),
        **{
            ATTR_WORKER_ID: {"S": "bg-7"},
            ATTR_LEASE_UNTIL: {"N": str(int(later(now, minutes=1).timestamp() * 1000))},
            ATTR_DURATION_MS: {"N": "2500"},
            ATTR_ATTEMPTS: {"N": "2"},
            ATTR_RESULT: {"S": json.dumps({"rows": 3})},
        },
    )
    fleet.job_event(job_id, "job.started", later(now, seconds=1))
    seen = _count_calls(monkeypatch)

    result = fleet.run("job", job_id)

    assert (0, "") == (result.code, result.err)
    lines = result.out.splitlines()
    assert "status       succeeded" in lines
    assert "attempts     2  (runs started, redrives included)" in lines
    assert "worker       bg-7" in lines
    assert "duration     2.5s" in lines
    assert 'result       {"rows": 3}' in lines
    assert not any(line.startswith("lease until") for line in lines)  # a finished job holds no lease
    assert any("job.started" in line for line in lines)
    assert ["GetItem"] == seen


def test_a_redriven_job_running_again_shows_its_lease_and_not_its_old_dead_reason(fleet, table, now):
    """After a redrive the item is running but keeps the old deadReason: only what applies is shown."""
    job_id = new_job_id(8, now)
    lease = int(later(now, minutes=1).timestamp() * 1000)
    table(
        job_id,
        JobStatus.RUNNING,
        later(now, seconds=1),
        **{
            ATTR_DEAD_REASON: {"S": "attempts exhausted: boom"},
            ATTR_LAST_ERROR: {"S": "boom"},
            ATTR_LEASE_UNTIL: {"N": str(lease)},
            ATTR_DURATION_MS: {"N": "10"},
        },
    )

    lines = fleet.run("job", job_id).out.splitlines()

    assert "status       running" in lines
    assert any(line.startswith("lease until  20") for line in lines)
    assert "last error   boom" in lines
    assert not any(line.startswith(("dead reason", "result")) for line in lines)
    assert "duration     -" in lines


def test_an_item_written_failed_before_the_rename_reads_as_retrying(fleet, table, now, monkeypatch):
    """Items from before issue 34 said failed for "will retry": shown and listed as retrying."""
    job_id = new_job_id(9, now)
    table(job_id, LEGACY_RETRYING, later(now, seconds=1), **{ATTR_LAST_ERROR: {"S": "boom"}})
    seen = _count_calls(monkeypatch)

    shown = fleet.run("job", job_id, "--json")
    listed = fleet.run("jobs", "--status", "retrying", "--json")

    assert "retrying" == json.loads(shown.out)["status"]
    assert [(job_id, "retrying")] == [(job["job_id"], job["status"]) for job in json.loads(listed.out)]
    assert ["GetItem"] + ["Query"] * _days_in_last(hours=1) + ["BatchGetItem"] == seen  # the state is filtered here


def test_a_quarantined_job_shows_as_dead_with_its_reason(fleet, table, now):
    """A dead item (quarantined: unknown jobType) shows dead and the reason, even with no job stream."""
    job_id = new_job_id(2, now)
    table(job_id, JobStatus.DEAD, later(now, seconds=1), **{ATTR_DEAD_REASON: {"S": "unknown jobType 'x'"}})

    result = fleet.run("job", job_id)

    assert 0 == result.code, result.err
    assert "status       dead" in result.out.splitlines()
    assert "dead reason  unknown jobType 'x'" in result.out.splitlines()


def _days_in_last(**window: float) -> int:
    """How many UTC days (index partitions) the window ending now spans."""
    end = datetime.now(UTC)
    return len(days_in(end - timedelta(**window), end))


def test_failed_lists_dead_jobs_from_the_sparse_failures_index_then_reads_them(fleet, table, now, monkeypatch):
    """--failed: one Query per day on failures (never a scan), one BatchGetItem; dead only, not a redriven one."""
    retrying, dead, fine, redriven = (new_job_id(index, now) for index in (3, 4, 5, 6))
    table(retrying, JobStatus.RETRYING, later(now, seconds=1))
    table(dead, JobStatus.DEAD, later(now, seconds=2), **{ATTR_DEAD_REASON: {"S": "malformed"}})
    table(fine, JobStatus.SUCCEEDED, later(now, seconds=3))
    table(redriven, JobStatus.RUNNING, later(now, seconds=4), **{ATTR_FAILED_DAY: {"S": utc_day(now.timestamp())}})
    seen = _count_calls(monkeypatch)

    result = fleet.run("jobs", "--failed", "--since", "1h")

    assert 0 == result.code, result.err
    assert ["Query"] * _days_in_last(hours=1) + ["BatchGetItem"] == seen
    rows = result.out.splitlines()
    assert ["JOB", "ID", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "UPDATED"] == rows[0].split()
    assert [dead] == [row.split()[0] for row in rows[1:]]
    assert "dead" == rows[1].split()[2]


def test_failed_means_died_in_the_window_whenever_the_job_was_queued(fleet, table, now):
    """A job queued three days ago that died ten minutes ago is listed; one that died two hours ago is not."""
    old_but_recently_dead, long_dead = new_job_id(11, later(now, days=-3)), new_job_id(12, later(now, hours=-3))
    table(old_but_recently_dead, JobStatus.DEAD, now)
    table(long_dead, JobStatus.DEAD, later(now, hours=-2))

    result = fleet.run("jobs", "--failed", "--since", "1h", "--json")

    assert [old_but_recently_dead] == [job["job_id"] for job in json.loads(result.out)]


def test_jobs_status_and_since_select_jobs_queued_in_the_window(fleet, table, now):
    """--status S lists only that state; a job queued before --since is left out, however recently updated."""
    recent, old = new_job_id(6, now), new_job_id(7, later(now, hours=-3))
    table(recent, JobStatus.RUNNING, later(now, seconds=1))
    table(old, JobStatus.RUNNING, later(now, seconds=2))
    table(new_job_id(8, now), JobStatus.SUCCEEDED, later(now, seconds=3))

    result = fleet.run("jobs", "--status", "running", "--since", "1h", "--json")

    assert [recent] == [job["job_id"] for job in json.loads(result.out)]


def test_jobs_since_queries_each_utc_day_of_the_window_and_lists_newest_first(fleet, table, now, monkeypatch):
    """--since 2d spans three day partitions: one Query each, jobs from every day, newest job ID first."""
    today, two_days_ago = new_job_id(13, now), new_job_id(14, later(now, hours=-40))
    table(today, JobStatus.SUCCEEDED, later(now, seconds=1))
    table(two_days_ago, JobStatus.SUCCEEDED, later(now, hours=-40))
    seen = _count_calls(monkeypatch)

    result = fleet.run("jobs", "--since", "2d", "--json")

    assert [today, two_days_ago] == [job["job_id"] for job in json.loads(result.out)]
    assert ["Query"] * _days_in_last(days=2) + ["BatchGetItem"] == seen


def test_a_listing_reads_its_items_100_keys_a_request_and_reports_the_read_units(fleet, table, now, monkeypatch):
    """150 listed jobs: two BatchGetItems (DynamoDB's limit is 100 keys); stderr says requests and read units."""
    listed = [new_job_id(100 + index, later(now, seconds=index)) for index in range(150)]
    for job_id in listed:
        table(job_id, JobStatus.SUCCEEDED, now)
    seen = _count_calls(monkeypatch)

    result = fleet.run("jobs", "--since", "1h", "--json")

    assert sorted(listed, reverse=True) == [job["job_id"] for job in json.loads(result.out)]
    assert 2 == seen.count("BatchGetItem")
    [note] = result.err.splitlines()
    assert note.startswith(f"fleet: note: ledger read {len(seen)} request(s), ")
    assert "read units" in note


def test_an_item_from_before_the_indexes_is_shown_by_job_but_not_listed(fleet, table, now):
    """No queuedDay (written before the upgrade): GetItem still finds it; listings show indexed items only."""
    legacy = new_job_id(15, now)
    table(legacy, JobStatus.SUCCEEDED, later(now, seconds=1), indexed=False)

    shown = fleet.run("job", legacy, "--json")
    listed = fleet.run("jobs", "--since", "1h", "--json")

    assert "succeeded" == json.loads(shown.out)["status"]
    assert [] == json.loads(listed.out)
    assert listed.err.startswith("fleet: note: ledger read ")  # the ledger answered, not the logs


def test_a_queued_job_no_worker_claimed_yet_is_shown_queued_from_main_jobs_log_line(fleet, table, now, monkeypatch):
    """main_job writes no ledger item: until the claim, the ledger has none and fleet job reads main_job's line."""
    job_id = new_job_id(16, now)
    table(new_job_id(17, now), JobStatus.SUCCEEDED, later(now, seconds=1))  # the ledger is on and answers
    fleet.main_job_event(job_id, "trigger.received", later(now, seconds=1))
    seen = _count_calls(monkeypatch)

    shown = fleet.run("job", job_id, "--json")
    listed = fleet.run("jobs", "--since", "1h", "--json")

    document = json.loads(shown.out)
    assert (0, "") == (shown.code, shown.err)  # no ledger item is no error and no fallback note
    assert ("queued", 0, None) == (document["status"], document["attempts"], document["ledger"])
    assert ["trigger.received"] == [event["event"] for event in document["events"]]
    assert "GetItem" == seen[0]
    assert job_id not in {job["job_id"] for job in json.loads(listed.out)}  # listed once claimed


def test_without_the_table_job_falls_back_to_the_logs_with_a_note(fleet, now):
    """No ledger table: one note line on stderr, then today's log-based answer."""
    job_id = new_job_id(8, now)
    fleet.job_event(job_id, "job.started", later(now, seconds=1))

    result = fleet.run("job", job_id)

    assert 0 == result.code
    assert [
        f"fleet: note: job ledger {fleet.names.job_ledger_table} unavailable (ResourceNotFoundException): from the logs"
    ] == result.err.splitlines()
    assert "status       running" in result.out.splitlines()


def test_with_the_ledger_off_jobs_lists_from_the_logs_with_a_note(fleet, now, monkeypatch):
    """JOB_LEDGER_TABLE empty turns the ledger off: a note, and the job streams' list."""
    monkeypatch.setenv("JOB_LEDGER_TABLE", "")
    job_id = new_job_id(9, now)
    fleet.job_event(job_id, "job.started", later(now, seconds=1))

    result = fleet.run("jobs", "--since", "1h")

    assert "fleet: note: job ledger off (JOB_LEDGER_TABLE is empty): listing from the logs\n" == result.err
    assert job_id in result.out


def test_an_unreachable_ledger_endpoint_falls_back(fleet, table, now, monkeypatch):
    """A DynamoDB endpoint that refuses connections is a note and the logs' answer, not an error."""
    original = clients.Clients.from_environment.__func__

    def refusing(cls):
        built = original(cls)

        def refuse(**_):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

        built.dynamodb.meta.events.register("before-send.dynamodb.*", refuse)
        return built

    monkeypatch.setattr(clients.Clients, "from_environment", classmethod(refusing))
    job_id = new_job_id(10, now)
    fleet.job_event(job_id, "job.started", later(now, seconds=1))

    result = fleet.run("job", job_id)

    assert 0 == result.code
    assert result.err.startswith("fleet: note: job ledger ")
    assert "unreachable" in result.err
    assert 1 == len(result.err.splitlines())
