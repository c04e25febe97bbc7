"""Container entry point: ``python -m main_job``."""

from __future__ import annotations

import sys

from common.names import MAIN_JOB_SERVICE
from common.worker import run_service
from main_job.service import build


def main() -> int:
    return run_service(MAIN_JOB_SERVICE, build)


if __name__ == "__main__":
    sys.exit(main())
