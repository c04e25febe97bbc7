"""The client-CPU probes' shared parts: rounds interleave the callers, and the median is reported."""

from __future__ import annotations

import pytest

from bench.client_probe import interleaved_medians, print_against, probe_main


def test_rounds_interleave_the_callers_and_report_each_one_s_median() -> None:
    order: list[str] = []
    values = {"a": iter([5.0, 1.0, 3.0]), "b": iter([2.0, 9.0, 4.0])}

    def sample(name: str) -> float:
        order.append(name)
        return next(values[name])

    figures = interleaved_medians({"a": lambda: sample("a"), "b": lambda: sample("b")}, rounds=3)

    assert ["a", "b", "a", "b", "a", "b"] == order
    assert {"a": 3.0, "b": 4.0} == figures


def test_the_table_gives_each_figure_against_the_floor(capsys: pytest.CaptureFixture[str]) -> None:
    print_against({"client": 3.0, "floor": 2.0}, "floor", "CPU ms")

    assert [
        "| caller | CPU ms | vs floor |",
        "|---|---|---|",
        "| client | 3.00 | 1.50x |",
        "| floor | 2.00 | 1.00x |",
    ] == capsys.readouterr().out.splitlines()


def test_a_probe_s_command_line_measures_with_its_arguments_and_prints_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    asked: list[tuple[int, int]] = []

    def measure(jobs: int, rounds: int) -> dict[str, float]:
        asked.append((jobs, rounds))
        return {"client": 3.0, "floor": 1.5}

    status = probe_main(["--rounds", "3"], prog="probe", description="a probe", measure=measure, floor="floor", jobs=40)

    assert (0, [(40, 3)]) == (status, asked)
    assert "| client | 3.00 | 2.00x |" in capsys.readouterr().out.splitlines()
