"""``python -m tests.reliability.outcome_latency [JOBS]``: how long after a job's end its outcome reaches the ledger.

The window a crash or a freeze can re-run a finished job in (issue 32, finding 2). Runs JOBS (default 100)
half-second diagnostic-sleep jobs on the real local fleet (one background worker, the ledger on) and, for
each, compares when its effect line appeared (polled every 5 ms) with the ledger's ``finishedAt`` (the
worker's clock as it wrote ``succeeded``; same host, so the same clock). Prints p50, p90 and max in ms.
A measurement, not a test: run it with the machine otherwise idle for figures worth comparing.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime

from tests.reliability.harness import running_fleet
from tests.reliability.test_delivery_edges import EFFECTS, EffectTimes, _effects_file, _ledger, _settled, _trigger
from tests.waiting import wait_until


def measure(jobs: int) -> list[float]:
    """Milliseconds from each job's effect to its ``succeeded`` in the ledger."""
    path = _effects_file()
    with running_fleet("outcome-latency", settings={EFFECTS: str(path)}) as fleet, EffectTimes(path) as times:
        fleet.send("trigger", [_trigger(f"latency-{n}", seconds=0.5) for n in range(jobs)])
        wait_until(lambda: len(times.seen) >= jobs and _settled(fleet), timeout=300, interval=0.5, what="every job")
        ledger = _ledger(fleet)
    return [
        (datetime.fromisoformat(str(ledger[job_id]["finishedAt"])).timestamp() - seen) * 1000
        for job_id, seen in times.seen
    ]


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    gaps = sorted(measure(jobs))
    deciles = statistics.quantiles(gaps, n=10)
    summary = {"jobs": jobs, "p50_ms": round(deciles[4]), "p90_ms": round(deciles[8]), "max_ms": round(gaps[-1])}
    print(json.dumps(summary))  # noqa: T201 - a command-line measurement


if __name__ == "__main__":
    main()
