"""The command line in-process: exit codes, the error format, stdout vs stderr, --json,
global options, subfolders, config and init."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import dvlite
from tests.cli.conftest import DATA, DATA_SIZE, MODEL
from tests.cli.support import (
    assert_error,
    assert_same_tree,
    read_pointer,
    snapshot,
    xxh,
)

if TYPE_CHECKING:
    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo


# --- exit codes and the error boundary ---------------------------------------------------


def test_success_exits_0_with_data_on_stdout(cli: Cli) -> None:
    result = cli("version")
    assert result.code == 0
    assert f"dvlite {dvlite.__version__}" in result.out.splitlines()
    assert result.err == ""


def test_help_exits_0(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0
    assert "add" in result.out
    assert "status" in result.out


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["frobnicate"], "frobnicate"),
        (["status", "--frobnicate"], "--frobnicate"),
        (["--frobnicate", "status"], "--frobnicate"),
        (["add"], "PATH"),  # a required argument is missing
        (["add", "-j", "0", "data"], "jobs"),  # an option value out of range
    ],
    ids=[
        "unknown-command",
        "unknown-option",
        "unknown-global-option",
        "missing-argument",
        "bad-option-value",
    ],
)
def test_bad_usage_exits_2(tracked: TmpRepo, cli: Cli, args: list[str], culprit: str) -> None:
    before = snapshot(tracked.root)
    result = cli(*args)
    assert result.code == 2, result
    assert result.out == ""
    assert "Traceback" not in result.err
    assert "unexpected" not in result.err, result.err
    assert culprit.lower() in result.err.lower()
    assert_same_tree(before, snapshot(tracked.root))


def test_dvlite_usage_error_exits_2(tracked: TmpRepo, cli: Cli) -> None:
    assert_error(cli("config", "--local", "--user", "core.hash"), "--local", "--user", code=2)


def test_failure_exits_1_with_one_error_line_and_hint(tracked: TmpRepo, cli: Cli) -> None:
    result = cli("add", "nope.bin")
    assert_error(result, "nope.bin")
    assert len(result.err_lines) == 3, "a missing path comes with a hint"


def test_verbose_adds_a_traceback(tracked: TmpRepo, cli: Cli) -> None:
    quiet = cli("add", "nope.bin")
    assert "Traceback" not in quiet.err
    loud = cli("-v", "add", "nope.bin")
    assert loud.code == 1
    assert "Traceback (most recent call last)" in loud.err
    assert [line for line in loud.err_lines if line.startswith("error: ")] == [quiet.err_lines[0]]
    assert loud.out == ""


def test_unexpected_exception_is_one_error_line(
    tracked: TmpRepo, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("dvlite.ops.status.status", boom)
    assert_error(cli("status"), "kaboom")
    loud = cli("-v", "status")
    assert loud.code == 1
    assert "Traceback (most recent call last)" in loud.err
    assert "RuntimeError: kaboom" in loud.err


# --- stdout carries data only ------------------------------------------------------------


def test_add_prints_messages_on_stderr_only(tmp_repo: TmpRepo, cli: Cli) -> None:
    tmp_repo.gen({"data": DATA})
    result = cli("add", "data")
    assert result.code == 0
    assert result.out == ""
    assert "data" in result.err
    assert (tmp_repo.root / "data.dvl").is_file()
    assert "/data" in (tmp_repo.root / ".gitignore").read_text().splitlines()


def test_status_lines_on_stdout_summary_on_stderr(tracked: TmpRepo, cli: Cli) -> None:
    clean = cli("status")
    assert clean.code == 0
    assert clean.out == ""
    assert clean.err.strip() != ""  # "all ... match" goes to stderr
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    (tracked.root / "model.bin").unlink()
    dirty = cli("status")
    assert dirty.code == 0
    lines = dirty.out.splitlines()
    assert len(lines) == 2, dirty.out
    assert lines[0].startswith("modified:")
    assert "data" in lines[0]
    assert "1 modified" in lines[0]
    assert lines[1].startswith("deleted:")
    assert lines[1].split()[-1] == "model.bin"
    assert "data" not in dirty.err
    assert "model.bin" not in dirty.err


def test_diff_lines_on_stdout(tracked: TmpRepo, cli: Cli) -> None:
    none = cli("diff")
    assert (none.code, none.out) == (0, "")
    assert "no data changes" in none.err
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    (tracked.root / "data" / "new.txt").write_text("new\n")
    result = cli("diff")
    assert result.code == 0
    rows = [line.split() for line in result.out.splitlines()]
    assert rows == [["modified:", "data/a.csv"], ["added:", "data/new.txt"]]
    assert result.err == ""


def test_ls_rows_on_stdout(tracked: TmpRepo, cli: Cli) -> None:
    result = cli("ls")
    assert result.code == 0
    assert result.err == ""
    rows = [line.split("\t") for line in result.out.splitlines()]
    model_oid = xxh(MODEL)
    data_oid = read_pointer(tracked.root / "data.dvl")["oid"]
    assert rows == [
        ["data", str(DATA_SIZE), data_oid, "cached"],
        ["model.bin", str(len(MODEL)), model_oid, "cached"],
    ]
    inside = cli("ls", "data")
    assert [line.split("\t")[0] for line in inside.out.splitlines()] == [
        "data/a.csv",
        "data/sub/b.bin",
    ]


def test_checkout_prints_nothing_on_stdout(tracked: TmpRepo, cli: Cli) -> None:
    (tracked.root / "model.bin").unlink()
    result = cli("checkout")
    assert result.code == 0
    assert result.out == ""
    assert "1 written" in result.err
    assert (tracked.root / "model.bin").read_bytes() == MODEL


def test_config_value_on_stdout(tmp_repo: TmpRepo, cli: Cli) -> None:
    result = cli("config", "core.hash")
    assert (result.code, result.out, result.err) == (0, "xxh128\n", "")


# --- --json ------------------------------------------------------------------------------


def _json(result_out: str) -> Any:
    return json.loads(result_out)


def test_status_json(tracked: TmpRepo, cli: Cli) -> None:
    clean = cli("status", "--json")
    assert clean.code == 0
    assert _json(clean.out) == {"changed": [], "checked": 2}
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    (tracked.root / "data" / "c.txt").write_text("c\n")
    (tracked.root / "data" / "sub" / "b.bin").unlink()
    doc = _json(cli("status", "--json").out)
    assert doc == {
        "changed": [
            {
                "path": "data",
                "state": "modified",
                "added": ["c.txt"],
                "modified": ["a.csv"],
                "deleted": ["sub/b.bin"],
            }
        ],
        "checked": 2,
    }


def test_diff_json(tracked: TmpRepo, cli: Cli) -> None:
    assert _json(cli("diff", "--json").out) == []
    (tracked.root / "model.bin").write_bytes(b"model weights v2\n")
    result = cli("diff", "--json")
    assert result.code == 0
    assert _json(result.out) == [
        {
            "path": "model.bin",
            "change": "modified",
            "old_oid": xxh(MODEL),
            "new_oid": xxh(b"model weights v2\n"),
            "old_size": len(MODEL),
            "new_size": len(b"model weights v2\n"),
        }
    ]


def test_ls_json(tracked: TmpRepo, cli: Cli) -> None:
    doc = _json(cli("ls", "--json").out)
    assert doc == [
        {
            "path": "data",
            "kind": "dir",
            "size": DATA_SIZE,
            "oid": read_pointer(tracked.root / "data.dvl")["oid"],
            "in_cache": True,
            "files": 2,
            "on_remote": None,  # not asked: no --remote
            "chunks": None,  # a folder; and no chunk list in the cache
            "shared_bytes": None,
        },
        {
            "path": "model.bin",
            "kind": "file",
            "size": len(MODEL),
            "oid": xxh(MODEL),
            "in_cache": True,
            "files": None,
            "on_remote": None,
            "chunks": None,
            "shared_bytes": None,
        },
    ]


def test_add_json(tmp_repo: TmpRepo, cli: Cli) -> None:
    tmp_repo.gen({"model.bin": MODEL})
    result = cli("add", "model.bin", "--json")
    assert result.code == 0
    doc = _json(result.out)
    assert isinstance(doc, dict)
    assert doc["stored"] == [
        {
            "path": "model.bin",
            "pointer_file": "model.bin.dvl",
            "oid": xxh(MODEL),
            "size": len(MODEL),
            "files": None,
            "changed": True,
        }
    ]
    assert doc["hashed_files"] == 1
    assert doc["hashed_bytes"] == len(MODEL)
    again = _json(cli("add", "model.bin", "--json").out)
    assert isinstance(again, dict)
    assert again["stored"][0]["changed"] is False


def test_checkout_json(tracked: TmpRepo, cli: Cli) -> None:
    (tracked.root / "model.bin").unlink()
    (tracked.root / "data" / "extra.txt").write_text("extra\n")
    tracked.dvl_add("data")  # extra.txt is now cached, so checkout may remove it safely
    tracked.git("checkout", "--", "data.dvl")
    result = cli("checkout", "--json")
    assert result.code == 0
    assert _json(result.out) == {
        "written": ["model.bin"],
        "removed": ["data/extra.txt"],
        "missing": [],
        "unchanged": 0,
    }


def test_fsck_json(tracked: TmpRepo, cli: Cli) -> None:
    result = cli("fsck", "--json")
    assert result.code == 0
    # data: 2 files + 1 manifest; model.bin: 1 file
    assert _json(result.out) == {"checked": 4, "quarantined": [], "recipes_checked": 0,
                                 "recipes_removed": []}


def test_fsck_json_reports_corruption(tracked: TmpRepo, cli: Cli) -> None:
    obj = tracked.root / ".dvlite" / "cache" / xxh(MODEL)[:2] / xxh(MODEL)[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")
    result = cli("fsck", "--json")
    assert result.code == 1
    doc = _json(result.out)
    assert isinstance(doc, dict)
    assert doc["checked"] == 4
    assert [oid for oid, _ in doc["quarantined"]] == [xxh(MODEL)]
    assert not obj.exists()
    assert result.err.startswith("error: ")
    assert xxh(MODEL) in result.err


def test_version_json(cli: Cli) -> None:
    result = cli("version", "--json")
    assert result.code == 0
    doc = _json(result.out)
    assert isinstance(doc, dict)
    assert doc["dvlite"] == dvlite.__version__
    assert {"python", "xxhash", "typer", "fsspec"} <= doc.keys()


# --- --exit-code -------------------------------------------------------------------------


def test_status_exit_code(tracked: TmpRepo, cli: Cli) -> None:
    assert cli("status", "--exit-code").code == 0
    (tracked.root / "data" / "a.csv").write_text("changed\n")
    assert cli("status").code == 0
    differs = cli("status", "--exit-code")
    assert differs.code == 1
    assert "data" in differs.out
    assert cli("status", "--exit-code", "model.bin").code == 0


def test_diff_exit_code(tracked: TmpRepo, cli: Cli) -> None:
    assert cli("diff", "--exit-code").code == 0
    (tracked.root / "model.bin").write_bytes(b"other\n")
    assert cli("diff").code == 0
    differs = cli("diff", "--exit-code")
    assert differs.code == 1
    assert "model.bin" in differs.out
    assert cli("diff", "--exit-code", "HEAD", "HEAD").code == 0


# --- -C, subfolders, -q ------------------------------------------------------------------


def test_dash_c_runs_in_another_folder(
    tmp_repo: TmpRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_repo.gen({"data": DATA, "sub": {"f.bin": b"f"}})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("-C", str(tmp_repo.root), "add", "data").code == 0
    assert (tmp_repo.root / "data.dvl").is_file()
    assert cli("-C", str(tmp_repo.root / "sub"), "add", "f.bin").code == 0
    assert (tmp_repo.root / "sub" / "f.bin.dvl").is_file()
    status = cli("-C", str(tmp_repo.root), "status", "--json")
    assert _json(status.out) == {"changed": [], "checked": 2}
    assert not (elsewhere / ".dvlite").exists()
    assert os.listdir(elsewhere) == []


def test_dash_c_init(
    git_dir: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("-C", str(git_dir), "init").code == 0
    assert (git_dir / ".dvlite" / "config.toml").is_file()


def test_every_command_works_from_a_subfolder(
    tracked: TmpRepo, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracked.gen({"notes": {"readme.txt": "notes\n"}})
    sub = tracked.root / "notes"
    monkeypatch.chdir(sub)
    # targets are relative to the cwd
    assert cli("add", "readme.txt").code == 0
    assert (sub / "readme.txt.dvl").is_file()
    assert "/readme.txt" in (sub / ".gitignore").read_text().splitlines()
    assert read_pointer(sub / "readme.txt.dvl")["path"] == "readme.txt"
    assert _json(cli("status", "--json").out) == {"changed": [], "checked": 3}
    assert _json(cli("status", "--json", "readme.txt").out) == {"changed": [], "checked": 1}
    assert _json(cli("status", "--json", "../data").out) == {"changed": [], "checked": 1}
    ls = _json(cli("ls", "--json", "readme.txt").out)
    assert isinstance(ls, list)
    assert [e["path"] for e in ls] == ["notes/readme.txt"]
    (sub / "readme.txt").unlink()
    assert cli("checkout", "readme.txt").code == 0
    assert (sub / "readme.txt").read_text() == "notes\n"
    (sub / "readme.txt").write_text("edited\n")
    assert cli("commit", "readme.txt").code == 0
    assert read_pointer(sub / "readme.txt.dvl")["oid"] == xxh("edited\n")
    diff = cli("diff", "--json", "--exit-code")
    assert diff.code == 1
    assert [e["path"] for e in _json(diff.out)] == ["notes/readme.txt"]
    assert cli("unprotect", "readme.txt").code == 0
    assert cli("config", "core.hash").out == "xxh128\n"
    assert cli("fsck").code == 0
    assert cli("init").code == 0
    assert not (sub / ".dvlite").exists()


def test_init_from_a_subfolder_uses_the_top(
    git_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (git_dir / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(git_dir / "deep" / "er")
    assert cli("init").code == 0
    assert (git_dir / ".dvlite").is_dir()
    assert not (git_dir / "deep" / "er" / ".dvlite").exists()


def test_quiet_silences_messages(tmp_repo: TmpRepo, cli: Cli) -> None:
    tmp_repo.gen({"data": DATA})
    tmp_repo.git("commit", "-q", "--allow-empty", "-m", "start")
    added = cli("-q", "add", "data")
    assert (added.code, added.out, added.err) == (0, "", "")
    assert (tmp_repo.root / "data.dvl").is_file()
    assert (cli("-q", "status").code, cli("-q", "status").err) == (0, "")
    (tmp_repo.root / "data" / "a.csv").unlink()
    checkout = cli("-q", "checkout")
    assert (checkout.code, checkout.out, checkout.err) == (0, "", "")
    assert (tmp_repo.root / "data" / "a.csv").is_file()
    assert cli("-q", "diff").err == ""
    (tmp_repo.root / "data" / "a.csv").write_text("changed\n")
    dirty = cli("-q", "status")
    assert "data" in dirty.out  # data is not a message
    assert dirty.err == ""
    assert_error(cli("-q", "add", "missing.bin"), "missing.bin")


def test_quiet_init(git_dir: Path, cli: Cli) -> None:
    result = cli("-q", "init")
    assert (result.code, result.out, result.err) == (0, "", "")
    assert (git_dir / ".dvlite").is_dir()


# --- config ------------------------------------------------------------------------------


def _toml(path: Path) -> dict[str, object]:
    return tomllib.loads(path.read_text())


def test_config_set_get_unset(tmp_repo: TmpRepo, cli: Cli) -> None:
    project = tmp_repo.root / ".dvlite" / "config.toml"
    assert cli("config", "cache.link").out == '["reflink", "copy"]\n'
    result = cli("config", "cache.link", "hardlink,copy")
    assert (result.code, result.out) == (0, "")
    assert _toml(project)["cache"] == {"link": ["hardlink", "copy"]}
    assert cli("config", "cache.link").out == '["hardlink", "copy"]\n'
    assert cli("config", "core.autostage", "yes").code == 0
    assert cli("config", "core.autostage").out == "true\n"
    assert cli("config", "remote.store.url", "/srv/store").code == 0
    assert cli("config", "remote.store.url").out == "/srv/store\n"
    assert cli("config", "--unset", "cache.link").code == 0
    assert "cache" not in _toml(project)
    assert cli("config", "cache.link").out == '["reflink", "copy"]\n'
    assert_error(cli("config", "--unset", "cache.link"), "cache.link")
    assert_error(cli("config", "--unset", "cache.link", "copy"), "--unset", code=2)


def test_config_local_is_private(tmp_repo: TmpRepo, cli: Cli) -> None:
    project = tmp_repo.root / ".dvlite" / "config.toml"
    local = tmp_repo.root / ".dvlite" / "config.local.toml"
    before = project.read_bytes()
    assert cli("config", "--local", "remote.store.password", "s3cret").code == 0
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert _toml(local) == {"remote": {"store": {"password": "s3cret"}}}
    assert project.read_bytes() == before
    assert cli("config", "core.hash", "sha256").code == 0
    assert cli("config", "--local", "core.hash", "xxh128").code == 0
    assert cli("config", "core.hash").out == "xxh128\n"  # local beats project
    assert cli("config", "--local", "--unset", "core.hash").code == 0
    assert cli("config", "core.hash").out == "sha256\n"
    assert stat.S_IMODE(local.stat().st_mode) == 0o600
    assert "/config.local.toml" in (tmp_repo.root / ".dvlite" / ".gitignore").read_text()


def test_config_user(tmp_repo: TmpRepo, cli: Cli) -> None:
    assert cli("config", "--user", "core.jobs", "3").code == 0
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "dvlite" / "config.toml"
    assert _toml(user) == {"core": {"jobs": 3}}
    assert cli("config", "core.jobs").out == "3\n"


@pytest.mark.parametrize(
    ("args", "culprits"),
    [
        (["core.nope", "1"], ["core.nope"]),
        (["nosection"], ["nosection"]),
        (["core.hash", "md5"], ["core.hash", "md5"]),
        (["cache.link", "teleport"], ["cache.link", "teleport"]),
        (["core.lock_timeout", "0"], ["core.lock_timeout", "'0'"]),
        (["core.jobs", "2.5"], ["core.jobs", "2.5"]),
        (["core.remote"], ["core.remote"]),  # no value and no default
    ],
)
def test_config_bad_key_or_value(
    tmp_repo: TmpRepo, cli: Cli, args: list[str], culprits: list[str]
) -> None:
    before = snapshot(tmp_repo.root)
    assert_error(cli("config", *args), *culprits)
    assert_same_tree(before, snapshot(tmp_repo.root))


def test_broken_config_file_is_a_clean_error(tracked: TmpRepo, cli: Cli) -> None:
    (tracked.root / ".dvlite" / "config.toml").write_text("[core\nhash = 1\n")
    assert_error(cli("status"), "config.toml")
    (tracked.root / ".dvlite" / "config.toml").write_text('[core]\nhash = "md5"\n')
    assert_error(cli("status"), "core.hash", "config.toml")


def test_bad_environment_value_is_a_clean_error(
    tracked: TmpRepo, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVLITE_CORE_LOCK_TIMEOUT", "soon")
    assert_error(cli("status"), "core.lock_timeout")


# --- init and repo discovery --------------------------------------------------------------


def test_init(git_dir: Path, cli: Cli) -> None:
    first = cli("init")
    assert (first.code, first.out) == (0, "")
    assert "initialized" in first.err
    assert (git_dir / ".dvlite" / "config.toml").is_file()
    again = cli("init")
    assert (again.code, again.out) == (0, "")
    assert "already" in again.err


def test_init_outside_git_fails_naming_the_folder(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    assert_error(cli("init"), str(plain))
    assert os.listdir(plain) == []


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["add", "f.bin"],
        ["checkout"],
        ["commit"],
        ["diff"],
        ["ls"],
        ["fsck"],
        ["config", "core.hash"],
        ["unprotect", "f.bin"],
    ],
    ids=lambda a: a[0],
)
def test_outside_a_dvlite_repo_says_run_init(git_dir: Path, cli: Cli, args: list[str]) -> None:
    (git_dir / "f.bin").write_bytes(b"f")
    before = snapshot(git_dir)
    result = cli(*args)
    assert_error(result, str(git_dir))
    assert "dvlite init" in result.err
    assert_same_tree(before, snapshot(git_dir))
