"""The exceptions the operator CLI turns into a readable line on stderr."""

from __future__ import annotations


class OpsError(Exception):
    """Something the operator can fix (a wrong queue name, a missing log group); the message says what."""


class UsageError(OpsError):
    """The command line itself is wrong (exit status 2, like argparse's own usage errors); nothing was done."""
