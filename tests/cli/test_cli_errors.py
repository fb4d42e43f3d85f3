"""The "done when" failures: each is one `error:` line naming the culprit, exit 1, and
leaves every file on disk (workspace, pointers, .gitignore, .dvlite/cache, .git) as it was."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.cli.conftest import MODEL
from tests.cli.support import assert_error, assert_same_tree, snapshot, xxh

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

READ_COMMANDS = [["status"], ["status", "model.bin"], ["ls"], ["diff"]]
WRITE_COMMANDS = [
    ["checkout"],
    ["checkout", "model.bin"],
    ["checkout", "--force"],
    ["add", "model.bin"],
    ["commit"],
    ["commit", "model.bin"],
]
ALL_COMMANDS = READ_COMMANDS + WRITE_COMMANDS


def _ids(args: list[str]) -> str:
    return "-".join(a.lstrip("-") for a in args)


def _fails_cleanly(
    cli: Cli, root: Path, args: list[str], *culprits: str, after_messages: bool = False
) -> str:
    """Run ``dvlite args``: it must fail with one error line and change nothing."""
    before = snapshot(root)
    result = cli(*args)
    try:
        line = assert_error(result, *culprits, after_messages=after_messages)
        assert_same_tree(before, snapshot(root))
    except AssertionError as exc:
        raise AssertionError(f"`dvlite {' '.join(args)}`: {exc}") from None
    return line


# --- malformed and hostile pointers -----------------------------------------------------


def test_malformed_pointer(tracked: TmpRepo, cli: Cli) -> None:
    (tracked.root / "model.bin").write_bytes(b"new bytes, not yet added\n")
    (tracked.root / "model.bin.dvl").write_text('version = 1\npath = "model.bin\noid = [\n')
    for args in ALL_COMMANDS:
        _fails_cleanly(cli, tracked.root, args, "model.bin.dvl")


def _hostile(tracked: TmpRepo, tmp_path: Path, case: str) -> None:
    text = (tracked.root / "model.bin.dvl").read_text()
    good_path, good_oid = 'path = "model.bin"', f'oid = "{xxh(MODEL)}"'
    assert good_path in text
    assert good_oid in text
    replacement = {
        # relative to the pointer's folder: two levels up is outside the repo
        "dotdot": (good_path, 'path = "../../etc/passwd"'),
        "dotdot-inside": (good_path, 'path = "sub/../model.bin"'),
        # an absolute path (under tmp_path, so a bug cannot touch the real system)
        "absolute": (good_path, f'path = "{tmp_path / "victim"}"'),
        "short-oid": (good_oid, f'oid = "{xxh(MODEL)[:-1]}"'),
        "long-oid": (good_oid, f'oid = "{xxh(MODEL)}00000000"'),
        "non-hex-oid": (good_oid, f'oid = "{"z" * 32}"'),
    }[case]
    (tracked.root / "model.bin.dvl").write_text(text.replace(*replacement))


HOSTILE = ["dotdot", "dotdot-inside", "absolute", "short-oid", "long-oid", "non-hex-oid"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_pointer(tracked: TmpRepo, cli: Cli, tmp_path: Path, case: str) -> None:
    (tmp_path / "victim").write_bytes(b"not dvlite's\n")
    (tracked.root / "model.bin").write_bytes(b"new bytes, not yet added\n")
    _hostile(tracked, tmp_path, case)
    outside = snapshot(tmp_path, skip=["repo"])
    for args in ALL_COMMANDS:
        _fails_cleanly(cli, tracked.root, args, "model.bin.dvl")
    assert_same_tree(outside, snapshot(tmp_path, skip=["repo"]))
    assert not (tracked.root.parent.parent / "etc").exists()


def test_pointer_oid_of_the_other_hash_length(tracked: TmpRepo, cli: Cli) -> None:
    """A 64-digit (sha256-length) oid in an xxh128 repo is the wrong length for this repo."""
    text = (tracked.root / "model.bin.dvl").read_text()
    (tracked.root / "model.bin.dvl").write_text(text.replace(xxh(MODEL), xxh(MODEL) * 2))
    for args in (["status"], ["ls"], ["checkout", "model.bin"]):
        _fails_cleanly(cli, tracked.root, args, "model.bin.dvl")


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_pointer_in_git_history(
    tracked: TmpRepo, cli: Cli, tmp_path: Path, case: str
) -> None:
    _hostile(tracked, tmp_path, case)
    tracked.git_commit("hostile pointer")
    tracked.git("checkout", "-q", "HEAD~1", "--", "model.bin.dvl")  # the workspace is fine
    for args in (["ls", "--rev", "HEAD"], ["diff", "HEAD~1", "HEAD"]):
        _fails_cleanly(cli, tracked.root, args, "model.bin.dvl")


# --- missing targets -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["status", "nothere"],
        ["status", "nothere.dvl"],
        ["status", "--exit-code", "nothere"],
        ["checkout", "nothere"],
        ["checkout", "nothere.dvl"],
        ["checkout", "data/nothere.csv"],
        ["status", "data/nothere.csv"],
    ],
    ids=_ids,
)
def test_missing_target(tracked: TmpRepo, cli: Cli, args: list[str]) -> None:
    _fails_cleanly(cli, tracked.root, args, args[-1])


def test_checkout_of_data_in_neither_workspace_nor_cache(tracked: TmpRepo, cli: Cli) -> None:
    (tracked.root / "model.bin").unlink()
    obj = tracked.root / ".dvlite" / "cache" / xxh(MODEL)[:2] / xxh(MODEL)[2:]
    obj.unlink()
    # checkout does what it can, sums it up, then reports what it could not do
    for args in (["checkout"], ["checkout", "model.bin"], ["checkout", "--force"]):
        _fails_cleanly(cli, tracked.root, args, "`model.bin`", after_messages=True)


def test_deleted_pointer_target_is_reported_by_status(tracked: TmpRepo, cli: Cli) -> None:
    (tracked.root / "model.bin").unlink()
    before = snapshot(tracked.root)
    result = cli("status", "--exit-code")
    assert result.code == 1
    assert result.out.split() == ["deleted:", "model.bin"]
    assert "Traceback" not in result.err
    assert_same_tree(before, snapshot(tracked.root))


# --- add: paths outside the repo, missing paths ----------------------------------------------


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_add_path_outside_the_repo(tracked: TmpRepo, cli: Cli, tmp_path: Path, how: str) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"outside\n")
    target = str(outside) if how == "absolute" else "../outside.bin"
    before_outside = snapshot(tmp_path, skip=["repo"])
    _fails_cleanly(cli, tracked.root, ["add", target], "outside.bin", "outside the repo")
    assert_same_tree(before_outside, snapshot(tmp_path, skip=["repo"]))
    assert not (tmp_path / "outside.bin.dvl").exists()


@pytest.mark.parametrize("target", [".dvlite/config.toml", ".git/config", ".dvlite"])
def test_add_path_dvlite_or_git_manage(tracked: TmpRepo, cli: Cli, target: str) -> None:
    _fails_cleanly(cli, tracked.root, ["add", target], target)


def test_add_missing_path(tracked: TmpRepo, cli: Cli) -> None:
    _fails_cleanly(cli, tracked.root, ["add", "nope.bin"], "nope.bin")


def test_add_with_one_missing_path_stores_nothing(tracked: TmpRepo, cli: Cli) -> None:
    tracked.gen({"fresh.bin": b"fresh data\n"})
    _fails_cleanly(cli, tracked.root, ["add", "fresh.bin", "nope.bin"], "nope.bin")
    assert not (tracked.root / "fresh.bin.dvl").exists()


# --- outside git ------------------------------------------------------------------------


@pytest.fixture
def plain_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a file in it and no git repo anywhere above it, as the cwd."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.bin").write_bytes(b"data\n")
    monkeypatch.chdir(plain)
    return plain


def test_init_in_a_non_git_folder(plain_dir: Path, cli: Cli) -> None:
    line = _fails_cleanly(cli, plain_dir, ["init"], str(plain_dir))
    assert "git" in line


def test_add_in_a_non_git_folder(plain_dir: Path, cli: Cli) -> None:
    result = cli("add", "data.bin")
    assert_error(result, str(plain_dir))
    assert "dvlite init" in result.err or "git init" in result.err
    assert sorted(p.name for p in plain_dir.iterdir()) == ["data.bin"]
