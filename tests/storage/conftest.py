"""Fixtures shared by the storage tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.storage.stat_index import StatIndex

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def index(tmp_path: Path) -> Iterator[StatIndex]:
    """A stat index of its own, in the test's temp folder."""
    idx = StatIndex(str(tmp_path / "stat-index.sqlite"))
    try:
        yield idx
    finally:
        idx.close()
