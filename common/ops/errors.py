"""The one exception the operator CLI turns into a readable line on stderr."""

from __future__ import annotations


class OpsError(Exception):
    """Something the operator can fix (a wrong queue name, a missing log group); the message says what."""
