"""The AWS CLI v2 the end-to-end tests drive, found as a user's shell would find it.

Not a hard-coded /usr/bin/aws, which is only where Debian's package puts it: the first ``aws`` on PATH
that is version 2 (``aws logs tail`` exists only in v2, and a v1 can come first on PATH, for example
through a pyenv shim), then the usual install locations. A missing CLI fails the test with what to
install, instead of a bare FileNotFoundError (tests are never skipped).
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

#: Where the official installer (/usr/local/bin) and Debian's package (/usr/bin) put it.
_USUAL_PLACES = ("/usr/local/bin", "/usr/bin")


def _is_v2(path: Path) -> bool:
    try:
        result = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return False
    return (result.stdout + result.stderr).startswith("aws-cli/2.")


@functools.cache
def aws_cli() -> str:
    """The path of an AWS CLI v2; fails the calling test with the fix when there is none."""
    folders = [*os.environ.get("PATH", "").split(os.pathsep), *_USUAL_PLACES]
    for folder in dict.fromkeys(f for f in folders if f):
        candidate = Path(folder) / "aws"
        if candidate.is_file() and os.access(candidate, os.X_OK) and _is_v2(candidate):
            return str(candidate)
    raise AssertionError(
        "the end-to-end tests drive the AWS CLI v2 as the README does: install it so that `aws` is on PATH "
        "(https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html)"
    )
