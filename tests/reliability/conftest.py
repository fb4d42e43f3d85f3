"""Fixtures shared by the reliability tests (concurrency, hostile input, secrets, sha256,
crash consistency, full disk). Append new fixtures; do not change the ones above them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# --- crash harness (test_crash_*.py) -------------------------------------------------------

_CRASH_COUNTS = "crash-counts.jsonl"


def _crash_counts_path(basetemp: Path) -> Path:
    """One counts file per pytest run, shared by its xdist workers (each has a folder of its
    own below the run's temp root)."""
    configured = os.environ.get("DVLITE_CRASH_COUNTS")
    if configured:
        return Path(configured)
    root = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    return root / _CRASH_COUNTS


@pytest.fixture(scope="session")
def crash_counts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON-lines file the crash tests append their kill-point counts to."""
    return _crash_counts_path(tmp_path_factory.getbasetemp())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """`crash harness: N kill points survived ...`, totalled over the run's crash tests."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    path = _crash_counts_path(factory.getbasetemp())
    if not path.exists():
        return
    per_scenario: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        counts = per_scenario.setdefault(row["scenario"], {})
        for sig, n in row["killed"].items():
            counts[sig] = counts.get(sig, 0) + n
    total = sum(n for counts in per_scenario.values() for n in counts.values())
    terminalreporter.write_sep("-", f"crash harness: {total} kill points survived")
    for name, counts in sorted(per_scenario.items()):
        terminalreporter.write_line(f"crash harness: {name}: {counts}")
    terminalreporter.write_line(f"crash harness: counts in {path}")
