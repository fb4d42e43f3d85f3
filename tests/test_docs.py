"""The documentation site builds without a warning, and its CLI reference matches the CLI."""

from __future__ import annotations

import difflib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "docs" / "gen_cli_reference.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_matches_the_cli() -> None:
    gen = _generator()
    expected = gen.render()
    committed = gen.OUTPUT.read_text(encoding="utf-8") if gen.OUTPUT.exists() else ""
    if committed != expected:
        diff = "".join(list(difflib.unified_diff(
            committed.splitlines(keepends=True), expected.splitlines(keepends=True),
            "docs/reference/cli.md (committed)", "docs/reference/cli.md (from the CLI)",
        ))[:60])
        pytest.fail(f"docs/reference/cli.md is out of date: run `{gen.REGENERATE}` and commit "
                    f"the result\n\n{diff}", pytrace=False)


def test_cli_reference_covers_every_command() -> None:
    import typer.main

    from dvlite.cli import app

    text = _generator().render()
    root = typer.main.get_command(app)
    ctx = type(root).context_class(root, info_name="dvlite")

    def paths(command: object, prefix: str) -> list[str]:
        found = [prefix]
        for name in getattr(command, "commands", {}):
            found += paths(command.commands[name], f"{prefix} {name}")  # type: ignore[attr-defined]
        return found

    for path in paths(root, ctx.info_name):
        assert f"## `{path}`" in text, path


@pytest.mark.slow
def test_docs_build_strictly(tmp_path: Path) -> None:
    for module in ("mkdocs", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"`{module}` is not installed: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about MkDocs 2
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
