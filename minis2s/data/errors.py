"""The one error type of the data layer, and where its warnings go."""

from __future__ import annotations

import sys
from collections.abc import Callable

Warn = Callable[[str], None]


class DataError(ValueError):
    """Bad input data: unreadable, malformed or unsafe files, or unusable settings."""


def warn_stderr(message: str) -> None:
    """Write one diagnostic line to standard error."""
    print(message, file=sys.stderr)
