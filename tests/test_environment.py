"""The environment the tests and the local fleet run in has the SDK the images ship.

constraints.txt pins what the images install; ./deploy.sh installs .venv under the same constraints
(checkov, which pins an older boto3, has a venv of its own). The local fleet starts its workers with
this interpreter (fleet/local/fleet.py runs ``sys.executable -m main_job``), so this one check covers
the suite and the local fleet alike.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def pinned(package: str) -> str:
    """The version constraints.txt pins ``package`` to."""
    [pin] = re.findall(rf"^{re.escape(package)}==(\S+)$", CONSTRAINTS.read_text(), flags=re.MULTILINE)
    return pin


@pytest.mark.parametrize("package", ["boto3", "botocore", "s3transfer", "urllib3"])
def test_the_tests_run_the_sdk_version_the_images_pin(package: str) -> None:
    """The installed SDK package is exactly constraints.txt's pin, as in the images."""
    assert pinned(package) == version(package)
