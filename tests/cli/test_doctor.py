"""``dvlite doctor``: versions, config per layer with secrets masked, link types, cache
size, remotes reachable or not; and ``--install-completion`` into a temporary HOME."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.support import assert_error

if TYPE_CHECKING:
    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

SECRET = "hunter2-very-secret"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def configured(tracked: TmpRepo, tmp_path: Path, cli: Cli) -> TmpRepo:
    assert cli("remote", "add", "-d", "store", str(tmp_path / "remote")).code == 0
    assert cli("remote", "modify", "store", "password", SECRET, "--local").code == 0
    return tracked


def test_report_json_shape(configured: TmpRepo, cli: Cli,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVLITE_CORE_JOBS", "3")
    result = cli("doctor", "--json")
    assert result.code == 0, result
    assert SECRET not in result.out + result.err
    doc = json.loads(result.out)
    assert set(doc) == {"versions", "root", "config", "cache", "remotes", "problems"}
    assert doc["root"] == str(configured.root)
    assert {"dvlite", "python", "git", "typer", "fsspec", "matplotlib"} <= set(doc["versions"])
    layers = {layer["name"]: layer for layer in doc["config"]}
    assert list(layers) == ["user", "project", "local", "environment"]
    assert layers["user"]["exists"] is False
    assert layers["project"]["values"]["core.remote"] == "store"
    assert layers["local"]["values"]["remote.store.password"] == "***"
    assert layers["environment"]["values"] == {"core.jobs": "3"}
    cache = doc["cache"]
    assert cache["objects"] == 4  # a.csv, sub/b.bin, the folder's manifest, model.bin
    assert cache["size"] > 0
    links = {link["name"]: link for link in cache["links"]}
    assert list(links) == ["reflink", "hardlink", "symlink", "copy"]
    assert links["copy"]["ok"] is True
    assert links["symlink"]["ok"] is True
    assert cache["configured"] == ["reflink", "copy"]
    assert cache["used"] in ("reflink", "copy")
    assert [(r["name"], r["ok"]) for r in doc["remotes"]] == [("store", True)]
    assert doc["problems"] == []
    assert "no problems found" in result.err


def test_counts_every_object(configured: TmpRepo, cli: Cli) -> None:
    objects = [p for p in (configured.root / ".dvlite" / "cache").rglob("*")
               if p.is_file() and len(p.parent.name) == 2]
    doc = json.loads(cli("doctor", "--json").out)
    assert doc["cache"]["objects"] == len(objects)
    assert doc["cache"]["size"] == sum(p.stat().st_size for p in objects)


def test_unreachable_remote_is_a_problem(configured: TmpRepo, cli: Cli) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/store"
    assert cli("remote", "add", "down", url).code == 0
    result = cli("doctor")
    assert result.code == 1, result
    lines = result.out.splitlines()
    assert lines[0] == "versions"
    assert any(line.split()[:2] == ["store", str(configured.root.parent / "remote")]
               and line.endswith("s)") for line in lines)
    down = next(line for line in lines if line.strip().startswith("down "))
    assert "NOT reachable" in down
    error = assert_error(dataclasses.replace(result, out=""), "down", after_messages=True)
    assert error.startswith("error: remote `down`")
    assert SECRET not in result.out + result.err
    assert "***" in result.out  # the password's line, masked


def test_a_bad_config_value_is_reported_not_fatal(configured: TmpRepo, cli: Cli) -> None:
    config = configured.root / ".dvlite" / "config.toml"
    config.write_text(config.read_text() + "[cache]\nlink = [\"teleport\"]\n")
    result = cli("doctor", "--json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert any("teleport" in problem for problem in doc["problems"])
    assert doc["cache"]["used"] is None or doc["cache"]["configured"]


def test_outside_a_project(tmp_path: Path, cli: Cli) -> None:
    result = cli("-C", str(tmp_path), "doctor")
    assert result.code == 0, result
    assert "project: none here" in result.out
    doc = json.loads(cli("-C", str(tmp_path), "doctor", "--json").out)
    assert (doc["root"], doc["cache"], doc["remotes"]) == (None, None, [])
    assert [layer["name"] for layer in doc["config"]] == ["user", "environment"]


def test_install_completion_writes_into_home(cli: Cli) -> None:
    home = Path(os.environ["HOME"])  # a fresh folder, from the isolate fixture
    result = cli("--install-completion", "bash")
    assert result.code == 0, result
    script = home / ".bash_completions" / "dvlite.sh"
    assert "_DVLITE_COMPLETE" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()


def test_completion_answers(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_DVLITE_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "dvlite metrics p")
    monkeypatch.setenv("COMP_CWORD", "2")
    result = cli()
    assert result.code == 0, result
    assert result.out.split() == ["plot"]


_IMPORTED_BY_HELP = """
import sys
from dvlite.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_help_stays_light_with_completion_and_plots() -> None:
    """`dvlite --help` (and so every command's start-up) loads neither matplotlib, nor the
    chart code, nor fsspec. (Completion adds nothing either: typer imports its shell
    detection, shellingham, 0.5 ms, whether completion is on or off.)"""
    proc = subprocess.run([sys.executable, "-c", _IMPORTED_BY_HELP], capture_output=True,
                          text=True, check=True, timeout=60)
    assert "--install-completion" in proc.stdout
    loaded = set(proc.stderr.split())
    assert not loaded & {"matplotlib", "dvlite.ops.chart", "fsspec"}
