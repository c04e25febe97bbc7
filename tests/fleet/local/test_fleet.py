"""The local fleet's supervisor (fleet/local/fleet.py): what each worker process is started with."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.names import BACKGROUND_JOB_SERVICE, MAIN_JOB_SERVICE
from common.settings import ENV_JOB_LEDGER_TABLE
from fleet.local.fleet import LocalFleet, Worker
from fleet.local.provision import QueueUrls

URLS = QueueUrls(trigger="http://q/t", trigger_dlq="http://q/td", background="http://q/b", background_dlq="http://q/bd")


@pytest.mark.parametrize("inherited", [None, "my-own-jobs"])
def test_only_background_workers_are_told_the_ledger_table_as_on_ecs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, inherited: str | None
) -> None:
    """main_job writes nothing to the ledger, so, as tf/ecs.tf, it gets no JOB_LEDGER_TABLE, even one set by hand."""
    if inherited is None:
        monkeypatch.delenv(ENV_JOB_LEDGER_TABLE, raising=False)
    else:
        monkeypatch.setenv(ENV_JOB_LEDGER_TABLE, inherited)
    fleet = LocalFleet(port=1, environment="unit", background_workers=2, echo=False)
    fleet._state_dir = tmp_path  # run() makes it; only the workers' start is under test
    started: list[Worker] = []
    monkeypatch.setattr(fleet, "_spawn", started.append)

    fleet._start_workers(URLS)

    tables = {(worker.service, worker.env.get(ENV_JOB_LEDGER_TABLE)) for worker in started}
    assert {(MAIN_JOB_SERVICE, None), (BACKGROUND_JOB_SERVICE, inherited or fleet.names.job_ledger_table)} == tables
    assert 3 == len(started)
