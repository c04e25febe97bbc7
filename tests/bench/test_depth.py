"""``python -m bench.depth`` measures both servers at every depth asked for (counted, never timed)."""

from __future__ import annotations

from bench.depth import measure


def test_the_depth_probe_reports_a_receive_cost_for_each_depth_on_both_servers() -> None:
    for kind in ("stock", "embedded"):
        figures = measure(kind, receives=2, depths=(5, 20))
        assert sorted(figures) == [5, 20]
        assert all(wall > 0 and cpu >= 0 for wall, cpu in figures.values())
