"""Open the library for one command, print any refusal as one line, and close it again.

Example::

    >>> with_library(Path("lib.sqlite"), lambda lib: print(lib.users()) or 0)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def with_library(db: Path, action: Callable[[Any], int], refusals: tuple[type[Exception], ...] = ()) -> int:
    """Run ``action(library)``; exit status 1 with the one-line reason when the file cannot be
    opened (busy, failed migration) or when ``action`` raises one of ``refusals``."""
    from rescnn_appliance.music.db import DatabaseBusy, MigrationError
    from rescnn_appliance.music.library import Library

    try:
        lib = Library.open(db)
    except (MigrationError, DatabaseBusy) as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return 1
    try:
        return action(lib)
    except (*refusals, DatabaseBusy) as exc:
        print(f"rescnn-appliance: {exc}", file=sys.stderr)
        return 1
    finally:
        lib.close()
