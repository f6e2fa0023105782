"""Counts the cases each fuzz module really ran and prints the total when the module ends.

Hypothesis reports examples per test only with ``--hypothesis-show-statistics``; the figure for
``benchmarks/RESULTS-reliability.md`` is the sum printed here (``pytest tests/test_fuzz_*.py``).

Each fuzz module sets itself up with the same three lines::

    COUNT = FuzzCount()
    FAST = fuzz_settings(100)
    _report_count = COUNT.reporter("config")

Example::

    >>> counter = FuzzCount()
    >>> counter.add("config text")
    >>> counter.total
    1
"""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

COUNTS_FILE = Path(__file__).resolve().parent.parent / ".cache" / "fuzz-counts.json"


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings for a fuzz test: no deadline (the machine may be busy), and function
    fixtures such as ``tmp_path`` allowed (each example cleans up after itself)."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class FuzzCount:
    """Cases run per target; ``report()`` writes them to ``.cache/fuzz-counts.json``."""

    def __init__(self) -> None:
        self.by_target: collections.Counter[str] = collections.Counter()

    def add(self, target: str) -> None:
        self.by_target[target] += 1

    @property
    def total(self) -> int:
        return sum(self.by_target.values())

    def report(self, module: str) -> str:
        """Merge this module's counts into the counts file; returns one summary line."""
        try:
            COUNTS_FILE.parent.mkdir(parents=True, exist_ok=True)
            known = json.loads(COUNTS_FILE.read_text()) if COUNTS_FILE.exists() else {}
            known[module] = dict(self.by_target)
            tmp = COUNTS_FILE.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
            tmp.replace(COUNTS_FILE)
        except OSError:
            pass  # a read-only checkout still runs the tests
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.by_target.items()))
        return f"{module}: {self.total} fuzz cases ({parts})"

    def reporter(self, module: str) -> Any:
        """A module-scoped autouse fixture that prints :meth:`report` when the module ends."""

        @pytest.fixture(scope="module", autouse=True)
        def _report_count(request: pytest.FixtureRequest):
            yield
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            line = self.report(module)
            if reporter is not None:
                reporter.write_line(line)

        return _report_count
