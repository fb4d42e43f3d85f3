"""``dvlite init`` and ``dvlite config``: the project folder and layered configuration."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import ConfigError, NotARepoError
from dvlite.ops.init import config_get, config_set, config_unset, init
from dvlite.repo import Repo

if TYPE_CHECKING:
    from tests.helpers import TmpRepo


def _toml(path: str | Path) -> dict[str, object]:
    return tomllib.loads(Path(path).read_text())


def _untracked(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted(out.split())


# --- init -----------------------------------------------------------------------------------


def test_init_creates_project_folder(git_dir: Path) -> None:
    repo, created = init(str(git_dir))
    repo.close()

    assert created is True
    assert repo.root == str(git_dir)
    assert (git_dir / ".dvlite" / "config.toml").read_text().startswith("#")
    assert _untracked(git_dir) == [".dvlite/.gitignore", ".dvlite/config.toml"]


def test_init_twice_keeps_existing_config(git_dir: Path) -> None:
    repo, _ = init(str(git_dir))
    config_set(repo, "core.autostage", "true")
    repo.close()

    again, created = init(str(git_dir))
    again.close()

    assert created is False
    assert _toml(git_dir / ".dvlite" / "config.toml") == {"core": {"autostage": True}}


def test_init_from_subfolder_uses_the_top_of_the_work_tree(git_dir: Path) -> None:
    sub = git_dir / "a" / "b"
    sub.mkdir(parents=True)

    repo, _ = init(str(sub))
    repo.close()

    assert repo.root == str(git_dir)
    assert (git_dir / ".dvlite").is_dir()
    assert not (sub / ".dvlite").exists()


def test_init_outside_git_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "not-git"
    plain.mkdir()

    with pytest.raises(NotARepoError, match="git"):
        init(str(plain))

    assert not (plain / ".dvlite").exists()


def test_private_files_stay_out_of_git(tmp_repo: TmpRepo) -> None:
    config_set(tmp_repo.repo, "core.jobs", "2", level="local")
    tmp_repo.gen({"m.bin": b"m"})
    tmp_repo.dvl_add("m.bin")

    dvlite_files = [p for p in _untracked(tmp_repo.root) if p.startswith(".dvlite/")]

    assert (tmp_repo.root / ".dvlite" / "config.local.toml").exists()
    assert (tmp_repo.root / ".dvlite" / "cache").is_dir()
    assert dvlite_files == [".dvlite/.gitignore", ".dvlite/config.toml"]


def test_discover_from_subfolder(tmp_repo: TmpRepo) -> None:
    (tmp_repo.root / "x" / "y").mkdir(parents=True)

    with Repo.discover(str(tmp_repo.root / "x" / "y")) as repo:
        assert repo.root == str(tmp_repo.root)


def test_discover_outside_a_project_is_an_error(git_dir: Path) -> None:
    with pytest.raises(NotARepoError, match="not inside a dvlite project") as info:
        Repo.discover(str(git_dir))

    assert "dvlite init" in (info.value.hint or "")


# --- config get / set / unset ---------------------------------------------------------------


def test_get_defaults(tmp_repo: TmpRepo) -> None:
    assert config_get(tmp_repo.repo, "core.autostage") == (False, None)
    assert config_get(tmp_repo.repo, "core.hash") == ("xxh128", None)
    assert config_get(tmp_repo.repo, "cache.link") == (("reflink", "copy"), None)


@pytest.mark.parametrize(
    ("key", "raw", "stored"),
    [
        ("core.autostage", "true", True),
        ("core.autostage", "no", False),
        ("core.lock_timeout", "2.5", 2.5),
        ("core.jobs", "4", 4),
        ("cache.link", "hardlink,copy", ["hardlink", "copy"]),
        ("core.hash", "sha256", "sha256"),
        ("remote.origin.url", "/srv/store", "/srv/store"),
        ("remote.origin.jobs", "8", 8),
    ],
)
def test_set_writes_typed_value_to_project_config(
    tmp_repo: TmpRepo, key: str, raw: str, stored: object
) -> None:
    value = config_set(tmp_repo.repo, key, raw)

    assert value == stored
    section, name = key.rsplit(".", 1)
    doc: object = _toml(tmp_repo.repo.config_paths["project"])
    for part in section.split("."):
        assert isinstance(doc, dict)
        doc = doc[part]
    assert isinstance(doc, dict)
    assert doc[name] == stored
    got, origin = config_get(tmp_repo.reopen(), key)
    assert got == (tuple(stored) if isinstance(stored, list) else stored)
    assert origin is not None
    assert tmp_repo.repo.config_paths["project"] in origin


def test_set_keeps_other_keys_and_the_header(tmp_repo: TmpRepo) -> None:
    config_set(tmp_repo.repo, "core.jobs", "3")
    config_set(tmp_repo.repo, "remote.origin.url", "/srv/a")
    config_set(tmp_repo.repo, "core.autostage", "true")

    assert _toml(tmp_repo.repo.config_paths["project"]) == {
        "core": {"jobs": 3, "autostage": True},
        "remote": {"origin": {"url": "/srv/a"}},
    }


def test_local_config_is_private(tmp_repo: TmpRepo) -> None:
    config_set(tmp_repo.repo, "remote.origin.password", "hunter2", level="local")

    path = tmp_repo.repo.config_paths["local"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert _toml(path) == {"remote": {"origin": {"password": "hunter2"}}}
    assert "hunter2" not in Path(tmp_repo.repo.config_paths["project"]).read_text()


def test_user_config_goes_to_xdg_config_home(tmp_repo: TmpRepo) -> None:
    config_set(tmp_repo.repo, "core.jobs", "5", level="user")

    path = Path(os.environ["XDG_CONFIG_HOME"]) / "dvlite" / "config.toml"
    assert _toml(path) == {"core": {"jobs": 5}}
    assert config_get(tmp_repo.reopen(), "core.jobs")[0] == 5


def test_precedence_user_project_local_environment(
    tmp_repo: TmpRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_set(tmp_repo.repo, "core.jobs", "1", level="user")
    assert config_get(tmp_repo.reopen(), "core.jobs")[0] == 1
    config_set(tmp_repo.repo, "core.jobs", "2")
    assert config_get(tmp_repo.reopen(), "core.jobs")[0] == 2
    config_set(tmp_repo.repo, "core.jobs", "3", level="local")
    value, origin = config_get(tmp_repo.reopen(), "core.jobs")
    assert value == 3
    assert origin is not None
    assert tmp_repo.repo.config_paths["local"] in origin

    monkeypatch.setenv("DVLITE_CORE_JOBS", "4")
    assert config_get(tmp_repo.reopen(), "core.jobs") == (4, "the environment")


def test_flags_beat_everything(tmp_repo: TmpRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    config_set(tmp_repo.repo, "core.jobs", "2", level="local")
    monkeypatch.setenv("DVLITE_CORE_JOBS", "4")

    with Repo.discover(str(tmp_repo.root), flags={"core.jobs": 7}) as repo:
        assert config_get(repo, "core.jobs") == (7, "the command line")


def test_unset_removes_key_and_empty_tables(tmp_repo: TmpRepo) -> None:
    config_set(tmp_repo.repo, "core.jobs", "3")
    config_set(tmp_repo.repo, "remote.origin.url", "/srv/a")

    config_unset(tmp_repo.repo, "remote.origin.url")

    assert _toml(tmp_repo.repo.config_paths["project"]) == {"core": {"jobs": 3}}
    config_unset(tmp_repo.repo, "core.jobs")
    assert _toml(tmp_repo.repo.config_paths["project"]) == {}
    with pytest.raises(ConfigError, match="not set"):
        config_get(tmp_repo.reopen(), "core.jobs")


def test_unset_falls_back_to_lower_layer(tmp_repo: TmpRepo) -> None:
    config_set(tmp_repo.repo, "core.lock_timeout", "9", level="user")
    config_set(tmp_repo.repo, "core.lock_timeout", "3")

    config_unset(tmp_repo.repo, "core.lock_timeout")

    assert config_get(tmp_repo.reopen(), "core.lock_timeout")[0] == 9.0


def test_unset_of_a_key_not_set_is_an_error(tmp_repo: TmpRepo) -> None:
    with pytest.raises(ConfigError, match="not set"):
        config_unset(tmp_repo.repo, "core.jobs")
    with pytest.raises(ConfigError, match="not set"):
        config_unset(tmp_repo.repo, "core.jobs", level="local")


def test_get_of_a_key_without_value_is_an_error(tmp_repo: TmpRepo) -> None:
    with pytest.raises(ConfigError, match="not set"):
        config_get(tmp_repo.repo, "core.remote")
    with pytest.raises(ConfigError, match="not set"):
        config_get(tmp_repo.repo, "remote.origin.url")


@pytest.mark.parametrize("key", ["core.nope", "nosection", "remote.origin", "cache"])
def test_unknown_key_is_an_error(tmp_repo: TmpRepo, key: str) -> None:
    before = Path(tmp_repo.repo.config_paths["project"]).read_bytes()

    with pytest.raises(ConfigError, match="unknown config key"):
        config_set(tmp_repo.repo, key, "1")
    with pytest.raises(ConfigError, match="unknown config key"):
        config_get(tmp_repo.repo, key)
    with pytest.raises(ConfigError, match="unknown config key"):
        config_unset(tmp_repo.repo, key)

    assert Path(tmp_repo.repo.config_paths["project"]).read_bytes() == before


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("core.autostage", "maybe"),
        ("core.jobs", "0"),
        ("core.jobs", "1.5"),
        ("core.lock_timeout", "-1"),
        ("cache.link", "teleport"),
        ("core.hash", "md5"),
    ],
)
def test_bad_value_is_refused_and_nothing_written(tmp_repo: TmpRepo, key: str, raw: str) -> None:
    before = Path(tmp_repo.repo.config_paths["project"]).read_bytes()

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_set(tmp_repo.repo, key, raw)

    assert Path(tmp_repo.repo.config_paths["project"]).read_bytes() == before


def test_bad_value_in_a_file_names_the_file(tmp_repo: TmpRepo) -> None:
    path = tmp_repo.repo.config_paths["project"]
    Path(path).write_text("[core]\njobs = -3\n")

    with pytest.raises(ConfigError, match=r"config\.toml"):
        tmp_repo.reopen()


def test_bad_value_in_environment_is_an_error(
    tmp_repo: TmpRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVLITE_CORE_AUTOSTAGE", "perhaps")

    with pytest.raises(ConfigError, match="environment"):
        tmp_repo.reopen()


def test_a_table_option_reaches_the_backend_as_a_table(tmp_repo: TmpRepo) -> None:
    pytest.importorskip("s3fs")
    config_set(tmp_repo.repo, "remote.bucket.url", "s3://bucket/store")
    config_set(tmp_repo.repo, "remote.bucket.client_kwargs.region_name", "eu-west-1")
    config_set(tmp_repo.repo, "remote.bucket.config_kwargs.max_pool_connections", "7")
    store = tmp_repo.reopen().remote("bucket")
    assert store.fs.client_kwargs == {"region_name": "eu-west-1"}
    # dvlite's own timeouts are merged in, not replaced by the user's table
    assert store.fs.config_kwargs["max_pool_connections"] == 7
    assert "connect_timeout" in store.fs.config_kwargs
