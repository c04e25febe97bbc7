"""``python -m bench.peers`` runs the rows it is asked for and refuses names it does not know."""

from __future__ import annotations

import pytest

from bench.peers.__main__ import main


def test_it_prints_one_row_per_pipeline_and_round(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pipelines", "peer-ceiling", "--jobs", "20", "--rounds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| peer-ceiling |")]
    assert len(rows) == 2
    assert all(row.split("|")[6].strip() == "0" for row in rows)  # nothing lost


def test_an_unknown_pipeline_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--pipelines", "fleet-bg,nope"])
    assert exited.value.code == 2
