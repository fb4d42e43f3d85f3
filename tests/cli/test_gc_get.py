"""`dvlite gc` and `dvlite get` on the command line: confirmation, --dry-run, --json, exit
codes, stdout vs stderr."""

from __future__ import annotations

import io
import json
import os
import sys
from typing import TYPE_CHECKING

import pytest

from dvlite.ops.init import remote_add
from dvlite.ops.sync import push
from tests.cli.conftest import MODEL
from tests.cli.support import assert_error, cache_objects, read_pointer, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

MODEL_V2 = b"model weights v2\n"


class _Terminal(io.StringIO):
    """Typed answers on a stdin that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def outdated(tracked: TmpRepo) -> TmpRepo:
    """``tracked`` with a new model added on top: the old one is referenced by HEAD only."""
    tracked.gen({"model.bin": MODEL_V2})
    tracked.dvl_add("model.bin")
    return tracked


def _cache(repo: TmpRepo) -> set[str]:
    return set(cache_objects(repo.root / ".dvlite" / "cache"))


def _no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def test_gc_dry_run_lists_and_deletes_nothing(cli: Cli, outdated: TmpRepo) -> None:
    before = _cache(outdated)

    result = cli("gc", "--workspace", "--dry-run")

    assert result.code == 0, result
    assert result.out.splitlines() == [f"cache\t{xxh(MODEL)}\t{len(MODEL)}"]
    assert "1 of 5 objects unreferenced" in result.err
    assert _cache(outdated) == before


def test_gc_default_scope_keeps_committed_versions(cli: Cli, outdated: TmpRepo) -> None:
    result = cli("gc", "--dry-run")

    assert result.code == 0, result
    assert result.out == ""
    assert "nothing to delete" in result.err
    assert "1 commit(s)" in result.err


def test_gc_without_a_terminal_refuses(cli: Cli, outdated: TmpRepo,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _no_stdin(monkeypatch)
    before = _cache(outdated)

    result = cli("gc", "--workspace")

    line = assert_error(result, "not a terminal", after_messages=True)
    assert "--force" in result.err_lines[-1]
    assert "1 objects" in line or "1 unreferenced" in line
    assert _cache(outdated) == before


def test_gc_asks_and_deletes_on_yes(cli: Cli, outdated: TmpRepo,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))

    result = cli("gc", "--workspace")

    assert result.code == 0, result
    assert result.out == ""  # the question goes to stderr
    assert "[y/N]" in result.err
    assert xxh(MODEL) not in _cache(outdated)
    assert xxh(MODEL_V2) in _cache(outdated)
    assert "deleted 1 objects" in result.err


def test_gc_answer_no_deletes_nothing(cli: Cli, outdated: TmpRepo,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    before = _cache(outdated)

    result = cli("gc", "--workspace")

    assert result.code == 1
    assert "error: nothing deleted" in result.err
    assert _cache(outdated) == before


def test_gc_force_json(cli: Cli, outdated: TmpRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_stdin(monkeypatch)

    result = cli("gc", "--workspace", "--force", "--json")

    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["dry_run"] is False
    assert doc["plan"]["cache"]["unreferenced"] == {xxh(MODEL): len(MODEL)}
    assert doc["plan"]["remote"] is None
    assert doc["result"]["cache_deleted"] == 1
    assert xxh(MODEL) not in _cache(outdated)


def test_gc_dry_run_json(cli: Cli, outdated: TmpRepo) -> None:
    result = cli("gc", "-w", "--dry-run", "--json")

    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["result"] is None
    assert list(doc["plan"]["cache"]["unreferenced"]) == [xxh(MODEL)]
    assert xxh(MODEL) in _cache(outdated)


def test_gc_remote_without_cloud_is_usage_error(cli: Cli, outdated: TmpRepo) -> None:
    assert_error(cli("gc", "-r", "store"), "--cloud", code=2)


def test_gc_missing_manifest_is_an_error(cli: Cli, tracked: TmpRepo) -> None:
    oid = str(read_pointer(tracked.root / "data.dvl")["oid"])
    (tracked.root / ".dvlite" / "cache" / oid[:2] / oid[2:]).unlink()
    before = _cache(tracked)

    result = cli("gc", "--force")

    assert_error(result, "`data`", oid)
    assert _cache(tracked) == before


@pytest.fixture
def published(tracked: TmpRepo, tmp_path: Path) -> TmpRepo:
    remote_add(tracked.repo, "store", str(tmp_path / "store"), default=True)
    tracked.reopen()
    push(tracked.repo)
    tracked.git_commit("add a remote")
    return tracked


def test_get_writes_into_the_current_folder(cli: Cli, published: TmpRepo,
                                            tmp_path: Path) -> None:
    here = tmp_path / "elsewhere"
    here.mkdir()

    result = cli("-C", str(here), "get", str(published.root), "model.bin")

    assert result.code == 0, result
    assert result.out == ""
    assert (here / "model.bin").read_bytes() == MODEL
    assert "model.bin" in result.err
    assert os.listdir(here) == ["model.bin"]


def test_get_out_json_and_overwrite(cli: Cli, published: TmpRepo, tmp_path: Path) -> None:
    out = tmp_path / "a.csv"

    result = cli("get", str(published.root), "data/a.csv", "-o", str(out), "--json")
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert (doc["path"], doc["kind"], doc["out"]) == ("data/a.csv", "file", str(out))

    again = cli("get", str(published.root), "data/a.csv", "-o", str(out))
    assert_error(again, str(out), "exists already")
    assert cli("get", str(published.root), "data/a.csv", "-o", str(out), "-f").code == 0


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--rev", "nope"], "nope"),
        (["-r", "elsewhere"], "elsewhere"),
    ],
)
def test_get_errors_are_one_line(cli: Cli, published: TmpRepo, tmp_path: Path,
                                 args: list[str], culprit: str) -> None:
    result = cli("-C", str(tmp_path), "get", str(published.root), "model.bin", *args)

    assert_error(result, culprit)
    assert not (tmp_path / "model.bin").exists()


def test_get_untracked_path_and_bad_repo(cli: Cli, published: TmpRepo, tmp_path: Path) -> None:
    assert_error(cli("-C", str(tmp_path), "get", str(published.root), "nope.bin"), "nope.bin")
    assert_error(cli("-C", str(tmp_path), "get", str(tmp_path / "none"), "m.bin"),
                 "not a git repository")
