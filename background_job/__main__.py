"""Container entry point: ``python -m background_job``."""

from __future__ import annotations

import sys

from background_job.service import build
from common.names import BACKGROUND_JOB_SERVICE
from common.worker import run_service


def main() -> int:
    return run_service(BACKGROUND_JOB_SERVICE, build)


if __name__ == "__main__":
    sys.exit(main())
