"""``dvlite get``: data tracked in another git repo, fetched from its remote, nothing else."""

from __future__ import annotations

import os
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest

from dvlite import scm
from dvlite.errors import (
    ConfigError,
    GitError,
    NotARepoError,
    PathError,
    TransferError,
    UnsafeOperationError,
)
from dvlite.ops.get import default_out, get
from dvlite.ops.init import remote_add
from dvlite.ops.sync import Scope, push
from dvlite.storage import transfer
from tests.helpers import TmpRepo, git
from tests.ops.support import cache_oids, read_pointer, xxh

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

A, D, RUN = b"a,b\n1,2\n", b"deep\n", b"#!/bin/sh\necho hi\n"
M1, M2 = b"model v1\n", b"model v2, bigger\n"
OTHER = b"something else entirely\n"


@pytest.fixture
def source(tmp_repo: TmpRepo, tmp_path: Path) -> TmpRepo:
    """A repo with folder `data`, files `model.bin` and `other.bin`, all pushed to a folder
    remote; tag v1 has model v1, main (HEAD) model v2. Serves blobless clones."""
    tmp_repo.git("config", "uploadpack.allowFilter", "true")
    remote_add(tmp_repo.repo, "store", str(tmp_path / "store"), default=True)
    tmp_repo.reopen()
    tmp_repo.gen({"data": {"a.csv": A, "sub": {"d.txt": D}, "run.sh": RUN},
                  "model.bin": M1, "other.bin": OTHER})
    (tmp_repo.root / "data" / "run.sh").chmod(0o755)
    tmp_repo.dvl_add("data", "model.bin", "other.bin")
    tmp_repo.git_commit("v1")
    tmp_repo.git("tag", "v1")
    tmp_repo.gen({"model.bin": M2})
    tmp_repo.dvl_add("model.bin")
    tmp_repo.git_commit("v2")
    push(tmp_repo.repo, scope=Scope(all_commits=True))
    return tmp_repo


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """An empty folder outside any repo, to get into."""
    path = tmp_path / "dest"
    path.mkdir()
    return path


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[TmpRepo]:
    """A second dvlite project (empty cache), to get from inside."""
    path = tmp_path / "consumer"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    repo = TmpRepo.create(path)
    yield repo
    repo.close()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_get_a_file(source: TmpRepo, dest: Path) -> None:
    result = get(str(source.root), "model.bin", str(dest / "model.bin"))

    assert (dest / "model.bin").read_bytes() == M2
    assert os.listdir(dest) == ["model.bin"]  # no temp folder left behind
    assert (result.kind, result.files, result.size) == ("file", 1, len(M2))
    assert result.rev == source.git("rev-parse", "HEAD").strip()
    assert result.downloaded == 1


def test_get_a_folder(source: TmpRepo, dest: Path) -> None:
    result = get(str(source.root), "data", str(dest / "data"))

    assert _files(dest / "data") == {"a.csv": A, "run.sh": RUN, "sub/d.txt": D}
    assert stat.S_IMODE((dest / "data" / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "data" / "a.csv").stat().st_mode) == 0o644
    assert (result.kind, result.files, result.size) == ("dir", 3, len(A + D + RUN))
    assert result.downloaded == 4  # the manifest and three files
    assert os.listdir(dest) == ["data"]


def test_get_a_file_inside_a_folder(source: TmpRepo, dest: Path) -> None:
    get(str(source.root), "data/sub/d.txt", str(dest / "d.txt"))
    get(str(source.root), "data/sub", str(dest / "sub"))

    assert (dest / "d.txt").read_bytes() == D
    assert _files(dest / "sub") == {"d.txt": D}


def test_get_from_an_older_tag_and_commit(source: TmpRepo, dest: Path) -> None:
    first = source.git("rev-parse", "v1").strip()

    by_tag = get(str(source.root), "model.bin", str(dest / "m-tag"), rev="v1")
    by_sha = get(str(source.root), "model.bin", str(dest / "m-sha"), rev=first)
    by_expr = get(str(source.root), "model.bin", str(dest / "m-expr"), rev="main~1")

    assert (dest / "m-tag").read_bytes() == M1
    assert (dest / "m-sha").read_bytes() == M1
    assert (dest / "m-expr").read_bytes() == M1
    assert by_tag.rev == by_sha.rev == by_expr.rev == first


def test_get_from_a_file_url_into_a_new_folder(source: TmpRepo, dest: Path) -> None:
    out = dest / "deep" / "er" / "weights"

    get(source.root.as_uri(), "model.bin.dvl", str(out))

    assert out.read_bytes() == M2


def test_get_refuses_to_overwrite(source: TmpRepo, dest: Path) -> None:
    (dest / "model.bin").write_bytes(b"mine")
    (dest / "data").mkdir()
    (dest / "data" / "keep.txt").write_bytes(b"mine too")

    with pytest.raises(UnsafeOperationError, match="exists already") as info:
        get(str(source.root), "model.bin", str(dest / "model.bin"))
    assert "--force" in (info.value.hint or "")
    with pytest.raises(UnsafeOperationError, match="exists already"):
        get(str(source.root), "data", str(dest / "data"))

    assert (dest / "model.bin").read_bytes() == b"mine"
    assert _files(dest) == {"model.bin": b"mine", "data/keep.txt": b"mine too"}


def test_get_force_replaces(source: TmpRepo, dest: Path) -> None:
    (dest / "model.bin").write_bytes(b"mine")
    (dest / "data").mkdir()
    (dest / "data" / "stale.txt").write_bytes(b"old")

    get(str(source.root), "model.bin", str(dest / "model.bin"), force=True)
    get(str(source.root), "data", str(dest / "data"), force=True)

    assert (dest / "model.bin").read_bytes() == M2
    assert _files(dest / "data") == {"a.csv": A, "run.sh": RUN, "sub/d.txt": D}


def test_get_fetches_only_what_the_path_needs(source: TmpRepo, consumer: TmpRepo,
                                              dest: Path) -> None:
    data_oid = str(read_pointer(source.root / "data.dvl")["oid"])

    get(str(source.root), "model.bin", str(dest / "m"), into=consumer.repo)
    assert cache_oids(consumer) == {xxh(M2)}

    get(str(source.root), "data/a.csv", str(dest / "a.csv"), into=consumer.repo)
    assert cache_oids(consumer) == {xxh(M2), data_oid, xxh(A)}  # not d.txt, run.sh, other.bin

    again = get(str(source.root), "model.bin", str(dest / "m2"), into=consumer.repo)
    assert (again.downloaded, again.cached) == (0, 1)
    assert (dest / "m2").read_bytes() == M2
    assert not os.path.islink(dest / "m2")  # a private copy, not a link into the cache


def test_clone_is_shallow_and_blobless(source: TmpRepo, tmp_path: Path) -> None:
    clone = tmp_path / "clone"

    sha = scm.clone_revision(str(source.root), "v1", str(clone))

    assert sha == source.git("rev-parse", "v1").strip()
    assert (clone / "shallow").read_text().split() == [sha]
    present = git(clone, "cat-file", "--batch-all-objects", "--batch-check").split("\n")
    assert not [line for line in present if " blob " in line]
    assert git(clone, "show", f"{sha}:model.bin.dvl")  # read on demand


def test_error_not_a_git_repo(tmp_path: Path, dest: Path) -> None:
    (tmp_path / "plain").mkdir()

    with pytest.raises(GitError, match="not a git repository"):
        get(str(tmp_path / "plain"), "model.bin", str(dest / "m"))
    assert os.listdir(dest) == []


def test_error_unknown_revision(source: TmpRepo, dest: Path) -> None:
    with pytest.raises(GitError, match="unknown git revision `nope`"):
        get(str(source.root), "model.bin", str(dest / "m"), rev="nope")
    assert os.listdir(dest) == []


@pytest.mark.parametrize(
    "path", ["nope.bin", "data/missing.csv", "model.bin/inside", "data/sub/d.txt/x"])
def test_error_path_not_tracked(source: TmpRepo, dest: Path, path: str) -> None:
    with pytest.raises(PathError, match="not"):
        get(str(source.root), path, str(dest / "x"))
    assert os.listdir(dest) == []


def test_error_path_tracked_only_later(source: TmpRepo, dest: Path) -> None:
    source.gen({"late.bin": b"late"})
    source.dvl_add("late.bin")
    source.git_commit("v3")
    push(source.repo)

    get(str(source.root), "late.bin", str(dest / "late.bin"))
    with pytest.raises(PathError, match=r"`late\.bin` is not tracked"):
        get(str(source.root), "late.bin", str(dest / "late-v1.bin"), rev="v1")


def test_error_unsafe_path(source: TmpRepo, dest: Path) -> None:
    for path in ("../x", "/etc/passwd", ""):
        with pytest.raises(PathError):
            get(str(source.root), path, str(dest / "x"))


def test_error_no_remote_configured(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "lonely"
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    lonely = TmpRepo.create(path)
    lonely.gen({"m.bin": M1})
    lonely.dvl_add("m.bin")
    lonely.git_commit("v1")
    lonely.close()

    with pytest.raises(ConfigError, match="no default remote") as info:
        get(str(path), "m.bin", str(dest / "m.bin"))
    assert "-r NAME" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="no remote `elsewhere`"):
        get(str(path), "m.bin", str(dest / "m.bin"), remote="elsewhere")
    assert os.listdir(dest) == []


def test_error_not_a_dvlite_project(tmp_path: Path, dest: Path) -> None:
    path = tmp_path / "plain-git"
    path.mkdir()
    git(path, "init", "-q")
    (path / "f.txt").write_text("x")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "one")

    with pytest.raises(NotARepoError, match="not a dvlite project"):
        get(str(path), "f.txt", str(dest / "f.txt"))


def test_corrupt_remote_object_leaves_nothing(source: TmpRepo, tmp_path: Path,
                                              dest: Path) -> None:
    obj = tmp_path / "store" / xxh(M2)[:2] / xxh(M2)[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")

    with pytest.raises(TransferError, match=r"model\.bin"):
        get(str(source.root), "model.bin", str(dest / "model.bin"))
    assert os.listdir(dest) == []


def test_ctrl_c_cleans_up(source: TmpRepo, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(transfer, "download", interrupted)

    with pytest.raises(KeyboardInterrupt):
        get(str(source.root), "data", str(dest / "data"))
    assert os.listdir(dest) == []


def test_relative_remote_folder_is_found_beside_the_source(source: TmpRepo,
                                                            dest: Path) -> None:
    remote_add(source.repo, "near", "../store")
    source.git_commit("a remote named by a relative folder")

    get(str(source.root), "model.bin", str(dest / "m"), remote="near")
    get(source.root.as_uri(), "model.bin", str(dest / "m-url"), remote="near")

    assert (dest / "m").read_bytes() == (dest / "m-url").read_bytes() == M2


def test_default_out() -> None:
    assert default_out("data/sub/") == "sub"
    assert default_out("./model.bin.dvl") == "model.bin"
    assert default_out("model.bin") == "model.bin"


def test_force_never_replaces_a_git_repo(source: TmpRepo, dest: Path) -> None:
    (dest / "work" / ".git").mkdir(parents=True)

    with pytest.raises(UnsafeOperationError, match="git repo"):
        get(str(source.root), "data", str(dest / "work"), force=True)
    assert (dest / "work" / ".git").is_dir()
    assert sorted(os.listdir(dest)) == ["work"]
