"""The merge drivers ``dvlite install`` declares: git config and ``.gitattributes`` written
and removed, and real ``git merge`` runs that call them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dvlite.ops.hooks import DRIVERS, driver_command, install, uninstall
from dvlite.ops.merge import conflict_text
from dvlite.pipeline.lockfile import Lockfile, StageLock
from dvlite.pointer import decode
from tests.cli.support import run_main
from tests.helpers import run_dvlite
from tests.hooks.conftest import V1, as_files

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.helpers import TmpRepo
    from tests.hooks.conftest import Project

pytestmark = pytest.mark.e2e

PYTHON = "/opt/some venv/bin/python"
OURS = ("*.dvl merge=dvlite-pointer", "dvlite.lock merge=dvlite-lock")


def git_config(t: TmpRepo) -> list[str]:
    """The repo's own git config, `key value` lines, without git's core settings."""
    out = t.git("config", "--local", "--list")
    return [line for line in out.splitlines() if not line.startswith("core.")]


# --- install / uninstall ----------------------------------------------------------------------


def test_install_declares_the_drivers_once(tmp_repo: TmpRepo) -> None:
    (tmp_repo.root / ".gitattributes").write_text("*.csv text eol=lf\r\n*.bin binary")
    result = install(tmp_repo.repo, python=PYTHON)
    assert [(d.name, d.action) for d in result.drivers] == [
        ("dvlite-pointer", "installed"), ("dvlite-lock", "installed")]
    result = install(tmp_repo.repo, python=PYTHON)
    assert [d.action for d in result.drivers] == ["updated", "updated"]
    assert git_config(tmp_repo) == [
        f"merge.dvlite-pointer.driver={driver_command('pointer', PYTHON)}",
        "merge.dvlite-pointer.name=dvlite pointer (.dvl) merge driver",
        f"merge.dvlite-lock.driver={driver_command('lock', PYTHON)}",
        "merge.dvlite-lock.name=dvlite.lock merge driver",
    ]
    assert "'/opt/some venv/bin/python' -P -m dvlite git-merge-driver pointer %O %A %B %P" \
        in git_config(tmp_repo)[0]
    attributes = (tmp_repo.root / ".gitattributes").read_bytes()
    assert attributes == b"*.csv text eol=lf\r\n*.bin binary\n" + \
        "".join(line + "\n" for line in OURS).encode()
    check = tmp_repo.git("check-attr", "merge", "--", "data.dvl", "dvlite.lock", "sub/x.dvl")
    assert check.splitlines() == ["data.dvl: merge: dvlite-pointer",
                                  "dvlite.lock: merge: dvlite-lock",
                                  "sub/x.dvl: merge: dvlite-pointer"]

    result = uninstall(tmp_repo.repo)
    assert [d.action for d in result.drivers] == ["removed", "removed"]
    assert git_config(tmp_repo) == []
    assert (tmp_repo.root / ".gitattributes").read_bytes() == b"*.csv text eol=lf\r\n*.bin binary\n"
    assert [d.action for d in uninstall(tmp_repo.repo).drivers] == ["absent", "absent"]


def test_uninstall_removes_only_our_keys_and_a_file_it_emptied(tmp_repo: TmpRepo) -> None:
    install(tmp_repo.repo, python=PYTHON)
    tmp_repo.git("config", "merge.dvlite-lock.recursive", "binary")  # the user's own key
    # a name left without its command would make git stop every merge of `*.dvl`
    tmp_repo.git("config", "merge.dvlite-pointer.name", "renamed by hand")
    uninstall(tmp_repo.repo)
    assert git_config(tmp_repo) == ["merge.dvlite-lock.recursive=binary"]
    assert not (tmp_repo.root / ".gitattributes").exists()


def test_uninstall_leaves_a_driver_that_is_not_ours(tmp_repo: TmpRepo) -> None:
    install(tmp_repo.repo, python=PYTHON)
    tmp_repo.git("config", "merge.dvlite-pointer.driver", "my-merge %A")
    result = uninstall(tmp_repo.repo)
    assert [d.action for d in result.drivers] == ["not ours", "removed"]
    assert "merge.dvlite-pointer.driver=my-merge %A" in git_config(tmp_repo)
    assert (tmp_repo.root / ".gitattributes").read_text() == OURS[0] + "\n"


def test_the_commands_say_what_they_did(tmp_repo: TmpRepo,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert "installed the dvlite-lock merge driver for `dvlite.lock`" in \
        run_main(capsys, "install").err
    assert "removed the dvlite-lock merge driver for `dvlite.lock`" in \
        run_main(capsys, "uninstall").err
    assert [d.pattern for d in DRIVERS] == ["*.dvl", "dvlite.lock"]


# --- real merges ------------------------------------------------------------------------------


@pytest.fixture
def project(project: Project) -> Project:
    """conftest's project, with the `.gitattributes` that `dvlite install` wrote committed on
    `main`: git reads a merge's attributes from the work tree, so every branch needs it."""
    project.ok("add", ".gitattributes")
    project.ok("commit", "-q", "-m", "merge drivers")
    return project


def branch(project: Project, name: str, edit: Callable[[], None]) -> None:
    """A commit on a new branch `name` from `main`, made by ``edit`` (which may `dvlite add`)."""
    project.ok("checkout", "-q", "-b", name, "main")
    edit()
    project.ok("add", "-A")
    project.ok("commit", "-q", "-m", name)


def add(project: Project, tree: dict[str, object], *paths: str) -> Callable[[], None]:
    def edit() -> None:
        project.t.gen(tree)  # type: ignore[arg-type]
        project.t.dvl_add(*paths)
    return edit


def annotate(project: Project, pointer: str, line: str) -> Callable[[], None]:
    """An unknown key added by hand at the top of a pointer (the data stays as it is), where
    dvlite never writes one: a merge by git's line rules would leave it there."""
    def edit() -> None:
        path = project.root / pointer
        path.write_text(line + "\n" + path.read_text())
    return edit


def canonical(path: Path) -> bool:
    """Whether a pointer file is as dvlite writes it (as the merge driver leaves it)."""
    return decode(path.read_bytes(), source=str(path)).encode() == path.read_bytes()


def merge(project: Project, ours: str, theirs: str) -> tuple[int, str]:
    project.ok("checkout", "-q", ours)
    result = project.git("merge", "--no-edit", theirs)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout + result.stderr


def conflicted(project: Project, ours: str, theirs: str, path: str, why: str) -> str:
    """Merge ``theirs`` into ``ours``, which must stop on ``path``; git's and dvlite's output."""
    code, output = merge(project, ours, theirs)
    assert code != 0
    assert f"error: cannot merge `{path}`: {why}" in output
    assert project.ok("diff", "--name-only", "--diff-filter=U").stdout == path + "\n"
    return output


def test_the_same_change_on_both_sides_merges(project: Project) -> None:
    change = add(project, {"model.bin": b"model 3"}, "model.bin")
    branch(project, "left", change)
    branch(project, "right", lambda: (change(), annotate(project, "model.bin.dvl",
                                                         'note = "kept"')()))
    code, output = merge(project, "left", "right")
    assert code == 0, output
    assert (project.root / "model.bin").read_bytes() == b"model 3"
    assert 'note = "kept"' in (project.root / "model.bin.dvl").read_text()
    assert canonical(project.root / "model.bin.dvl")
    assert project.git("status", "--porcelain", "--", "*.dvl").stdout == ""


def test_a_pointer_changed_on_one_side_takes_that_change(project: Project) -> None:
    branch(project, "left", add(project, {"model.bin": b"model on the left"}, "model.bin"))
    branch(project, "right", annotate(project, "model.bin.dvl", "reviewed = true"))
    code, output = merge(project, "right", "left")
    assert code == 0, output
    text = (project.root / "model.bin.dvl").read_text()
    assert "reviewed = true" in text
    assert canonical(project.root / "model.bin.dvl")
    assert (project.root / "model.bin").read_bytes() == b"model on the left"  # post-merge


def test_files_added_to_a_folder_on_both_sides_merge(project: Project) -> None:
    branch(project, "left", add(project, {"data": {"left.csv": "l\n"}}, "data"))
    branch(project, "right", add(project, {"data": {"right.csv": "r\n"}}, "data"))
    code, output = merge(project, "right", "left")
    assert code == 0, output
    assert "data.dvl" not in project.git("status", "--porcelain").stdout
    run = run_dvlite(["checkout"], project.root)
    assert run.returncode == 0, run.stderr
    expected = {**as_files(V1), "data/left.csv": b"l\n", "data/right.csv": b"r\n"}
    assert project.read() == expected
    assert run_dvlite(["status", "--exit-code"], project.root).returncode == 0


def test_a_file_changed_differently_on_both_sides_conflicts(project: Project) -> None:
    branch(project, "left", add(project, {"data": {"a.csv": "left\n"}}, "data"))
    branch(project, "right", add(project, {"data": {"a.csv": "right\n"}}, "data"))
    before = (project.root / "data.dvl").read_text()
    output = conflicted(project, "right", "left", "data.dvl",
                        "file(s) in the folder changed differently on both sides: `a.csv`")
    assert "git checkout --ours data.dvl" in output
    text = (project.root / "data.dvl").read_text()
    assert text.startswith("<<<<<<< ours\n" + before + "=======\n")
    assert text.endswith(">>>>>>> theirs\n")
    assert (project.root / "data" / "a.csv").read_text() == "right\n"  # the data stays ours


def lock(**params: int) -> bytes:
    return Lockfile({name: StageLock(f"python {name}.py", params={"n": value})
                     for name, value in params.items()}).encode()


def write_lock(project: Project, data: bytes) -> Callable[[], None]:
    def edit() -> None:
        (project.root / "dvlite.lock").write_bytes(data)
    return edit


@pytest.fixture
def locked(project: Project) -> Project:
    write_lock(project, lock(prepare=1, train=1))()
    project.ok("add", "dvlite.lock")
    project.ok("commit", "-q", "-m", "lock")
    return project


def test_lock_stages_changed_on_different_sides_merge(locked: Project) -> None:
    branch(locked, "left", write_lock(locked, lock(prepare=2, train=1)))
    branch(locked, "right", write_lock(locked, lock(prepare=1, train=3, evaluate=1)))
    code, output = merge(locked, "left", "right")
    assert code == 0, output
    assert (locked.root / "dvlite.lock").read_bytes() == lock(prepare=2, train=3, evaluate=1)


def test_a_lock_stage_changed_differently_on_both_sides_conflicts(locked: Project) -> None:
    branch(locked, "left", write_lock(locked, lock(prepare=2, train=2)))
    branch(locked, "right", write_lock(locked, lock(prepare=1, train=3)))
    output = conflicted(locked, "left", "right", "dvlite.lock",
                        "stage(s) changed differently on both sides: `train`")
    assert "dvlite repro" in output
    assert (locked.root / "dvlite.lock").read_bytes() == conflict_text(
        lock(prepare=2, train=2), lock(prepare=1, train=3))


# --- the command git runs ---------------------------------------------------------------------


def versions(tmp_path: Path, base: bytes, ours: bytes, theirs: bytes) -> list[str]:
    paths = []
    for name, data in (("base", base), ("ours", ours), ("theirs", theirs)):
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    return paths


def test_the_driver_command(tmp_repo: TmpRepo, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert "git-merge-driver" not in run_main(capsys, "--help").out
    files = versions(tmp_path, lock(a=1, b=1), lock(a=2, b=1), lock(a=1, b=2))
    result = run_main(capsys, "git-merge-driver", "lock", *files, "dvlite.lock")
    assert (result.code, result.out, result.err) == (0, "", "")
    assert (tmp_path / "ours").read_bytes() == lock(a=2, b=2)

    files = versions(tmp_path, lock(a=1), lock(a=2), lock(a=3))
    result = run_main(capsys, "git-merge-driver", "lock", *files, "dvlite.lock")
    assert result.code == 1
    assert result.err_lines[0] == "error: cannot merge `dvlite.lock`: stage(s) changed " \
                                  "differently on both sides: `a`"
    assert result.err_lines[2].startswith("hint: keep one side with `git checkout --ours")
    assert (tmp_path / "ours").read_bytes().startswith(b"<<<<<<< ours\n")

    result = run_main(capsys, "git-merge-driver", "table", *files, "x")
    assert result.code == 2
    assert "unknown merge driver `table`" in result.err


def test_outside_a_dvlite_project_folders_are_not_merged(git_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    def folder(oid: str) -> bytes:
        return f'version = 1\npath = "d"\noid = "{oid * 32}"\nsize = 1\nfiles = 1\n' \
               f'kind = "dir"\n'.encode()
    files = versions(tmp_path, folder("a"), folder("b"), folder("c"))
    result = run_main(capsys, "git-merge-driver", "pointer", *files, "d.dvl")
    assert result.code == 1
    assert "outside a dvlite project" in result.err
    files = versions(tmp_path, folder("a"), folder("a"), folder("c"))
    assert run_main(capsys, "git-merge-driver", "pointer", *files, "d.dvl").code == 0
    assert (tmp_path / "ours").read_bytes().endswith(folder("c"))
