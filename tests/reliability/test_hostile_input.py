"""Crafted pointers, manifests, locks, pipelines and workspace symlinks, run through real
commands: none of them makes dvlite read or write outside the repo (sentinel files beside it
stay as they were, nothing new appears there, their bytes never reach the cache or the
output), or into `.git` and `.dvlite`; every refusal is one `error:` line, exit 1, no
traceback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import tomli_w

import dvlite.api
from dvlite.errors import DvliteError
from dvlite.ops import sync
from dvlite.ops.init import remote_add
from dvlite.storage.hashing import hash_bytes
from tests.reliability.fences import Fence, refused, run, symlink

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

A_CSV = b"x,y\n1,2\n"
B_BIN = b"\x00\x01" * 40
MODEL = b"weights\n"

# every command that reads pointers, with what it may do to the workspace and the cache
COMMANDS = [
    ("status",), ("checkout",), ("checkout", "--force"), ("pull",), ("ls",), ("diff",),
    ("commit",), ("gc", "--workspace", "--force"), ("fsck",), ("push",),
]
# the ones that must refuse when a pointer in the workspace is hostile
READERS = [c for c in COMMANDS if c[0] not in ("fsck", "diff")]


@pytest.fixture
def repo(tmp_repo: TmpRepo) -> TmpRepo:
    """Folder `data` and file `model.bin`, committed and pushed to a folder remote."""
    tmp_repo.gen({"data": {"a.csv": A_CSV, "sub": {"b.bin": B_BIN}}, "model.bin": MODEL})
    tmp_repo.dvl_add("data", "model.bin")
    remote_add(tmp_repo.repo, "store", str(tmp_repo.root.parent / "remote"), default=True)
    tmp_repo.reopen()
    assert sync.push(tmp_repo.repo).failed == {}
    tmp_repo.git_commit("data")
    return tmp_repo


@pytest.fixture
def fence(repo: TmpRepo) -> Fence:
    return Fence.around(repo.root, skip=("remote",))  # push may write to the remote


def write_pointer(root: Path, name: str, **fields: Any) -> None:
    doc = {"version": 1, "path": "evil", "oid": hash_bytes(A_CSV), "size": len(A_CSV),
           "kind": "file", **fields}
    (root / name).write_text(tomli_w.dumps({k: v for k, v in doc.items() if v is not None}))


def store_manifest(repo: TmpRepo, files: list[dict[str, Any]]) -> str:
    """A hand-written manifest stored under its true name (so only its content is hostile),
    in the cache and on the remote; returns its oid."""
    raw = json.dumps({"dvlite-manifest": 1, "files": files}).encode()
    oid = hash_bytes(raw)
    for store in (repo.root / ".dvlite/cache", repo.root.parent / "remote"):
        (store / oid[:2]).mkdir(parents=True, exist_ok=True)
        (store / oid[:2] / oid[2:]).write_bytes(raw)
    return oid


def entry(path: str, data: bytes = A_CSV, size: int | None = None) -> dict[str, Any]:
    return {"exec": False, "oid": hash_bytes(data), "path": path,
            "size": len(data) if size is None else size}


# --- pointers --------------------------------------------------------------------------------

UNSAFE_POINTER_PATHS = [
    "../outside/secret.txt", "/abs/outside/secret.txt", "..", "..\\outside\\secret.txt",
    "a\0b", "C:secret.txt", "sub/../../outside", ".git", ".GIT", ".dvlite", ".dvlite ",
    "model.bin.dvl",
]


@pytest.mark.parametrize("path", UNSAFE_POINTER_PATHS)
def test_a_pointer_naming_a_place_outside_its_folder_is_refused_by_every_command(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str], path: str,
) -> None:
    git_dir = {p.relative_to(repo.root) for p in (repo.root / ".git").rglob("*")}
    write_pointer(repo.root, "evil.dvl", path=path)
    for command in READERS:
        refused(capsys, fence, *command, naming="evil.dvl")
    run(capsys, fence, "fsck")
    # `.git` and `.dvlite` were not touched either (a pointer named `.git` once replaced it)
    assert {p.relative_to(repo.root) for p in (repo.root / ".git").rglob("*")} >= git_dir
    assert (repo.root / ".dvlite" / "config.toml").is_file()
    assert (repo.root / "model.bin").read_bytes() == MODEL
    with pytest.raises(DvliteError, match=r"evil\.dvl"):
        dvlite.api.read("evil", repo=str(repo.root), mode="rb")


@pytest.mark.parametrize("fields", [
    {"size": 2**63 - 1},  # the largest TOML integer
    {"size": 2**70},  # past it: TOML readers accept it anyway
    {"kind": "dir", "files": 2**63 - 1, "size": 2**63 - 1},
])
def test_huge_sizes_are_only_numbers(repo: TmpRepo, fence: Fence,
                                     capsys: pytest.CaptureFixture[str],
                                     fields: dict[str, int]) -> None:
    """A size is what the pointer claims; nothing allocates or reads by it."""
    write_pointer(repo.root, "evil.dvl", **fields)
    for command in COMMANDS:
        run(capsys, fence, *command)
    run(capsys, fence, "ls", "--json")


# --- manifests ----------------------------------------------------------------------------------

HOSTILE_MANIFESTS = {
    "dotdot": [entry("../../outside/secret.txt")],
    "absolute": [entry("/abs/outside/secret.txt")],
    "backslash": [entry("..\\..\\outside\\secret.txt")],
    "nul": [entry("a\0b")],
    "drive": [entry("C:secret.txt")],
    "duplicate": [entry("a.csv"), entry("a.csv")],
    "unsorted": [entry("b.csv"), entry("a.csv")],
    "file inside a file": [entry("a"), entry("a/b")],
}


@pytest.mark.parametrize("files", HOSTILE_MANIFESTS.values(), ids=HOSTILE_MANIFESTS.keys())
def test_a_hostile_manifest_is_refused_by_every_command(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str], files: list[dict[str, Any]],
) -> None:
    oid = store_manifest(repo, files)
    write_pointer(repo.root, "evil.dvl", oid=oid, kind="dir", files=len(files), size=0)
    for command in [("status",), ("checkout",), ("checkout", "--force"), ("ls", "evil")]:
        refused(capsys, fence, *command, naming=oid)
    refused(capsys, fence, "gc", "--workspace", "--force", naming="`evil`")  # deletes nothing
    refused(capsys, fence, "commit", naming="`evil`")  # nothing there to commit
    assert not (repo.root / "evil").exists()
    with pytest.raises(DvliteError, match=oid):
        dvlite.api.read("evil/a.csv", repo=str(repo.root), mode="rb")

    # from the remote: fetched (its name is right), then refused before anything is written
    for store in (repo.root / ".dvlite/cache",):
        (store / oid[:2] / oid[2:]).unlink()
    refused(capsys, fence, "pull", naming=oid)
    assert not (repo.root / "evil").exists()


def test_case_collisions_are_written_inside_the_folder(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str],
) -> None:
    """`A.txt` and `a.txt` in one folder: a case-sensitive filesystem holds both; on a
    case-insensitive one the second overwrites the first and `status` reports it (see
    docs/reliability.md). Either way every write lands inside the folder."""
    files = [entry("A.txt", A_CSV), entry("D/x", B_BIN), entry("a.txt", MODEL), entry("d", MODEL)]
    oid = store_manifest(repo, files)
    write_pointer(repo.root, "evil.dvl", oid=oid, kind="dir", files=4,
                  size=sum(f["size"] for f in files))
    run(capsys, fence, "checkout")
    assert (repo.root / "evil" / "A.txt").read_bytes() == A_CSV
    assert (repo.root / "evil" / "a.txt").read_bytes() == MODEL
    assert (repo.root / "evil" / "D" / "x").read_bytes() == B_BIN
    assert run(capsys, fence, "status", "--exit-code").code == 0


def test_a_manifest_claiming_huge_sizes_checks_out_the_real_bytes(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str],
) -> None:
    oid = store_manifest(repo, [entry("a.csv", A_CSV, size=2**62)])
    write_pointer(repo.root, "evil.dvl", oid=oid, kind="dir", files=1, size=2**62)
    for command in COMMANDS:
        run(capsys, fence, *command)
    assert (repo.root / "evil" / "a.csv").read_bytes() == A_CSV


# --- dvlite.lock and dvlite.toml ---------------------------------------------------------------


def lock_with_out(path: str, wdir: str | None = None) -> str:
    stage: dict[str, Any] = {"cmd": "true", "deps": [],
                             "outs": [{"path": path, "oid": hash_bytes(MODEL),
                                       "size": len(MODEL), "kind": "file"}], "params": {}}
    if wdir is not None:
        stage["wdir"] = wdir
    return tomli_w.dumps({"version": 1, "stages": {"train": stage}})


@pytest.mark.parametrize(("path", "wdir"), [
    ("../outside/secret.txt", None), ("/abs/x", None), ("x", ".."), ("x", "../outside"),
    (".git/hooks/post-checkout", None), ("hooks/pre-commit", ".git"), ("config.toml", ".dvlite"),
    (".DVLITE/config.toml", None), ("a\\..\\..\\x", None),
])
def test_a_lock_entry_outside_the_repo_or_in_git_is_refused(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str], path: str, wdir: str | None,
) -> None:
    (repo.root / "dvlite.lock").write_text(lock_with_out(path, wdir))
    hooks = sorted((repo.root / ".git" / "hooks").glob("*"))
    for command in [("status",), ("checkout",), ("checkout", "--force"), ("pull",),
                    ("gc", "--workspace", "--force"), ("commit",), ("ls",)]:
        refused(capsys, fence, *command, naming="dvlite.lock")
    assert sorted((repo.root / ".git" / "hooks").glob("*")) == hooks


@pytest.mark.parametrize("out", ["../outside/x", "/abs/x", ".git/hooks/post-checkout",
                                 ".dvlite/cache/xx", "a/../../x"])
def test_a_stage_writing_outside_the_repo_or_in_git_is_refused(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str], out: str,
) -> None:
    stages = {"stages": {"s": {"cmd": "echo hi > out", "outs": [out]}}}
    (repo.root / "dvlite.toml").write_text(tomli_w.dumps(stages))
    for command in [("repro",), ("repro", "--dry-run"), ("dag",)]:
        refused(capsys, fence, *command, naming="dvlite.toml")
    assert not (repo.root / "out").exists()  # the command never ran


# --- symlinks in the workspace -------------------------------------------------------------------


@pytest.mark.parametrize(("link", "target"), [
    ("data/sub", "dir"),  # a folder inside a tracked folder
    ("data", "dir"),  # the tracked folder itself
    ("model.bin", "secret.txt"),  # a tracked file
    ("data/sub/b.bin", "secret.txt"),  # a file inside a tracked folder
])
def test_a_workspace_symlink_leading_out_is_never_followed(
    repo: TmpRepo, fence: Fence, capsys: pytest.CaptureFixture[str], link: str, target: str,
) -> None:
    path = repo.root / link
    if path.is_dir():
        for inner in sorted(path.rglob("*"), reverse=True):
            inner.unlink() if inner.is_file() else inner.rmdir()
        path.rmdir()
    else:
        path.unlink()
    symlink(path, fence.outside / target)
    shown = str(path)
    for command in [("status",), ("checkout",), ("checkout", "--force"), ("commit",),
                    ("add", link.split("/", maxsplit=1)[0]), ("pull", "--force")]:
        refused(capsys, fence, *command, naming=shown)
    assert path.is_symlink()  # left for the user to look at


def test_pointers_behind_a_symlinked_folder_are_not_seen(
    repo: TmpRepo, capsys: pytest.CaptureFixture[str],
) -> None:
    """A folder that links out of the repo is not walked for pointers, and naming a pointer
    in it is refused: a pointer planted outside cannot steer a checkout."""
    fence_root = repo.root.parent / "outside"
    fence_root.mkdir()
    write_pointer(fence_root, "planted.dvl", path="planted")
    fence = Fence(repo.root, fence_root)
    fence.settle()
    symlink(repo.root / "linked", fence_root)
    listed = run(capsys, fence, "ls", "--json")
    assert "planted" not in listed.out
    assert run(capsys, fence, "checkout").code == 0
    refused(capsys, fence, "checkout", "linked/planted.dvl", naming="linked")
    assert not (fence_root / "planted").exists()
