"""The examples run end to end and check their own results (they exit 1 on any failed check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize("name", ["quickstart", "ml-pipeline"])
def test_example_passes_its_checks(name: str) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / name / "run.py")], capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{name}: all checks passed" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
