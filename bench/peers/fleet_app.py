"""The fleet's background worker on its own, for the peer table: ``python -m bench.peers.fleet_app``.

The very ``main()`` of the container entry point, with every registered job handler wrapped so that
each run also records its side effect, as the peers' jobs do. The handlers and the worker are the
production code; only the registry's entries are wrapped, from outside.
"""

from __future__ import annotations

import sys
import time
from collections.abc import MutableMapping
from typing import cast

from background_job.api import JobContext, JobHandler
from background_job.jobs import REGISTRY
from bench.peers.effects import record


def _recording(handler: JobHandler) -> JobHandler:
    def run(job: JobContext) -> None:
        started = time.monotonic()
        handler(job)
        record(job.job_id, started)

    return run


def main() -> int:
    registry = cast(MutableMapping[str, JobHandler], REGISTRY)  # a dict at run time; Final only to readers
    for name, handler in list(registry.items()):
        registry[name] = _recording(handler)
    from background_job.__main__ import main as background_main  # noqa: PLC0415 - after the registry is wrapped

    status: int = background_main()
    return status


if __name__ == "__main__":
    sys.exit(main())
