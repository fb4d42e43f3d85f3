"""Layered configuration: user < project < local < environment < flags, validated everywhere."""

from __future__ import annotations

import os
import stat
import tomllib
from typing import TYPE_CHECKING, Any

import pytest

from dvlite.config import (
    LOCAL_MODE,
    SCHEMA,
    Config,
    check_key,
    env_name,
    parse_value,
    set_value,
    unset_value,
    user_config_path,
)
from dvlite.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    return {
        "user": str(tmp_path / "xdg" / "dvlite" / "config.toml"),
        "project": str(tmp_path / "repo" / ".dvlite" / "config.toml"),
        "local": str(tmp_path / "repo" / ".dvlite" / "config.local.toml"),
    }


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read(path: str) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- where config lives ---------------------------------------------------------------------


def test_user_config_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_path() == str(tmp_path / "xdg" / "dvlite" / "config.toml")


def test_user_config_path_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_config_path() == str(tmp_path / "home" / ".config" / "dvlite" / "config.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", "")  # empty means unset
    assert user_config_path() == str(tmp_path / "home" / ".config" / "dvlite" / "config.toml")


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("cache.link", "DVLITE_CACHE_LINK"),
        ("core.lock_timeout", "DVLITE_CORE_LOCK_TIMEOUT"),
        ("core.hash", "DVLITE_CORE_HASH"),
    ],
)
def test_env_name(key: str, name: str) -> None:
    assert env_name(key) == name


# --- layering -------------------------------------------------------------------------------


def test_defaults_without_any_layer() -> None:
    cfg = Config.load({}, {})
    assert cfg.values == {}
    assert cfg.get("cache.link") == ("reflink", "copy")
    assert cfg.get("core.hash") == "xxh128"
    assert cfg.get("core.lock_timeout") == 30.0
    assert cfg.get("core.autostage") is False
    assert cfg.get("core.jobs") is None
    assert cfg.get("core.remote") is None
    assert cfg.get("cache.dir") is None
    assert cfg.get("remote.origin.url") is None
    assert set(SCHEMA) >= {"core.hash", "core.lock_timeout", "cache.link", "cache.dir"}


def test_missing_files_are_skipped(paths: dict[str, str]) -> None:
    assert Config.load(paths, {}).values == {}


@pytest.mark.parametrize("top", ["user", "project", "local", "env", "flags"])
def test_each_layer_overrides_the_ones_below(paths: dict[str, str], top: str) -> None:
    order = ["user", "project", "local", "env", "flags"]
    used = order[: order.index(top) + 1]
    jobs = {name: i + 1 for i, name in enumerate(order)}
    for level in ("user", "project", "local"):
        if level in used:
            write(paths[level], f"[core]\njobs = {jobs[level]}\n")
    env = {"DVLITE_CORE_JOBS": str(jobs["env"])} if "env" in used else {}
    flags = {"core.jobs": jobs["flags"]} if "flags" in used else None
    cfg = Config.load(paths, env, flags)
    assert cfg.get("core.jobs") == jobs[top]
    origin = cfg.origins["core.jobs"]
    if top in ("user", "project", "local"):
        assert origin == f"`{paths[top]}`"
    elif top == "env":
        assert "environment" in origin
    else:
        assert "command line" in origin


def test_layers_merge_key_by_key(paths: dict[str, str]) -> None:
    write(paths["user"], '[core]\nhash = "sha256"\njobs = 2\n')
    write(paths["project"], '[cache]\nlink = ["hardlink", "copy"]\n[core]\nremote = "origin"\n')
    write(paths["local"], '[remote.origin]\nurl = "s3://bucket/x"\npassword = "secret"\n')
    cfg = Config.load(paths, {"DVLITE_CORE_LOCK_TIMEOUT": "2.5"}, {"core.jobs": 8})
    assert cfg.values == {
        "core.hash": "sha256",
        "core.jobs": 8,
        "cache.link": ("hardlink", "copy"),
        "core.remote": "origin",
        "remote.origin.url": "s3://bucket/x",
        "remote.origin.password": "secret",
        "core.lock_timeout": 2.5,
    }
    assert cfg.origins["core.hash"] == f"`{paths['user']}`"
    assert cfg.origins["cache.link"] == f"`{paths['project']}`"
    assert cfg.origins["remote.origin.url"] == f"`{paths['local']}`"


def test_project_remote_is_overridden_by_local(paths: dict[str, str]) -> None:
    write(paths["project"], '[remote.origin]\nurl = "/shared/store"\nregion = "eu"\n')
    write(paths["local"], '[remote.origin]\nurl = "/my/store"\n')
    cfg = Config.load(paths, {})
    assert cfg.section("remote.origin") == {"url": "/my/store", "region": "eu"}


def test_section_takes_only_that_prefix(paths: dict[str, str]) -> None:
    write(
        paths["project"],
        '[remote.origin]\nurl = "a"\nretries = 3\n[remote.origin.client]\nregion = "eu"\n'
        '[remote.origin2]\nurl = "b"\n',
    )
    cfg = Config.load(paths, {})
    # a table stays a table: backends take options like S3's client_kwargs as dicts
    assert cfg.section("remote.origin") == {"url": "a", "retries": 3,
                                            "client": {"region": "eu"}}
    assert cfg.section("remote.origin2") == {"url": "b"}
    assert cfg.section("remote.nope") == {}
    assert cfg.get("remote.origin.retries") == 3


@pytest.mark.parametrize(
    ("name", "value", "key", "expected"),
    [
        ("DVLITE_CACHE_LINK", "hardlink, symlink", "cache.link", ("hardlink", "symlink")),
        ("DVLITE_CACHE_LINK", "copy", "cache.link", ("copy",)),
        ("DVLITE_CORE_AUTOSTAGE", "yes", "core.autostage", True),
        ("DVLITE_CORE_AUTOSTAGE", "OFF", "core.autostage", False),
        ("DVLITE_CORE_LOCK_TIMEOUT", "0.5", "core.lock_timeout", 0.5),
        ("DVLITE_CORE_JOBS", "3", "core.jobs", 3),
        ("DVLITE_CORE_HASH", "sha256", "core.hash", "sha256"),
        ("DVLITE_CACHE_DIR", "/big/disk/cache", "cache.dir", "/big/disk/cache"),
        ("DVLITE_CORE_REMOTE", "backup", "core.remote", "backup"),
    ],
)
def test_environment_values_are_parsed(name: str, value: str, key: str, expected: object) -> None:
    cfg = Config.load({}, {name: value})
    assert cfg.get(key) == expected
    assert type(cfg.get(key)) is type(expected)


def test_unrelated_environment_is_ignored(paths: dict[str, str]) -> None:
    cfg = Config.load(paths, {"DVLITE_NOPE": "1", "DVLITE_REMOTE_ORIGIN_URL": "x", "PATH": "/b"})
    assert cfg.values == {}


# --- validation names the layer -------------------------------------------------------------


@pytest.mark.parametrize("level", ["user", "project", "local"])
def test_bad_value_in_a_file_names_the_file(paths: dict[str, str], level: str) -> None:
    write(paths[level], '[core]\nhash = "md5"\n')
    with pytest.raises(ConfigError) as exc:
        Config.load(paths, {})
    assert f"`{paths[level]}`" in exc.value.message
    assert "core.hash" in exc.value.message
    assert exc.value.hint is not None


@pytest.mark.parametrize("level", ["user", "project", "local"])
def test_unknown_key_in_a_file_names_the_file(paths: dict[str, str], level: str) -> None:
    write(paths[level], "[core]\nfancy = true\n")
    with pytest.raises(ConfigError, match=r"unknown config key `core\.fancy`") as exc:
        Config.load(paths, {})
    assert f"`{paths[level]}`" in exc.value.message


def test_unparsable_file_names_the_file(paths: dict[str, str]) -> None:
    write(paths["project"], "[core\nhash = \n")
    with pytest.raises(ConfigError, match="cannot parse") as exc:
        Config.load(paths, {})
    assert paths["project"] in exc.value.message


def test_bad_environment_value_names_the_environment() -> None:
    with pytest.raises(ConfigError) as exc:
        Config.load({}, {"DVLITE_CACHE_LINK": "reflink,teleport"})
    assert "environment" in exc.value.message
    assert "teleport" in exc.value.message
    assert "cache.link" in exc.value.message


def test_bad_flag_names_the_command_line() -> None:
    with pytest.raises(ConfigError) as exc:
        Config.load({}, {}, {"core.lock_timeout": -1})
    assert "command line" in exc.value.message
    assert "core.lock_timeout" in exc.value.message
    with pytest.raises(ConfigError, match=r"unknown config key `core.bogus`.*command line"):
        Config.load({}, {}, {"core.bogus": 1})


@pytest.mark.parametrize(
    "text",
    [
        "[core]\njobs = true\n",
        "[core]\njobs = 0\n",
        "[core]\njobs = 1.5\n",
        "[core]\nautostage = 1\n",
        "[core]\nlock_timeout = -2\n",
        '[core]\nlock_timeout = "soon"\n',
        "[cache]\nlink = []\n",
        '[cache]\nlink = ["reflink", "nope"]\n',
        "[cache]\nlink = 3\n",
        '[cache]\ndir = ""\n',
        "[core]\njobs = inf\n",
        "[core]\nlock_timeout = nan\n",
        '[core]\nremote = ""\n',
        'remote = "origin"\n',
        '[remote]\norigin = "x"\n',
        'cache = "x"\n',
    ],
)
def test_invalid_project_config(paths: dict[str, str], text: str) -> None:
    write(paths["project"], text)
    with pytest.raises(ConfigError) as exc:
        Config.load(paths, {})
    assert f"`{paths['project']}`" in exc.value.message


# --- parse_value ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("core.autostage", "true", True),
        ("core.autostage", "Yes", True),
        ("core.autostage", "1", True),
        ("core.autostage", "on", True),
        ("core.autostage", "false", False),
        ("core.autostage", "NO", False),
        ("core.autostage", "0", False),
        ("core.autostage", "off", False),
        ("core.hash", "sha256", "sha256"),
        ("core.hash", "xxh128", "xxh128"),
        ("core.lock_timeout", "2.5", 2.5),
        ("core.lock_timeout", "10", 10.0),
        ("core.jobs", "4", 4),
        ("core.jobs", "4.0", 4),
        ("core.remote", "origin", "origin"),
        ("cache.dir", "/mnt/cache", "/mnt/cache"),
        ("cache.link", "hardlink,copy", ["hardlink", "copy"]),
        ("cache.link", " symlink , copy ", ["symlink", "copy"]),
        ("cache.link", "reflink", ["reflink"]),
        ("remote.origin.url", "s3://bucket/path", "s3://bucket/path"),
        ("remote.origin.url", "/srv/store", "/srv/store"),
        ("remote.origin.retries", "3", 3),
        ("remote.origin.verify", "false", False),
        ("remote.origin.ratio", "0.5", 0.5),
        ("remote.origin.tags", '["a", "b"]', ["a", "b"]),
        ("remote.origin.quoted", '"hello world"', "hello world"),
        ("remote.origin.plain", "hello world", "hello world"),
    ],
)
def test_parse_value_coerces(key: str, raw: str, expected: object) -> None:
    value = parse_value(key, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("core.autostage", "maybe"),
        ("core.autostage", ""),
        ("core.hash", "md5"),
        ("core.hash", "SHA256"),
        ("core.lock_timeout", "0"),
        ("core.lock_timeout", "-1"),
        ("core.lock_timeout", "soon"),
        ("core.lock_timeout", "nan"),
        ("core.jobs", "0"),
        ("core.jobs", "-2"),
        ("core.jobs", "2.5"),
        ("core.jobs", "many"),
        ("core.jobs", "nan"),
        ("core.jobs", "inf"),
        ("core.jobs", "1e400"),
        ("core.remote", ""),
        ("cache.dir", ""),
        ("cache.link", ""),
        ("cache.link", "reflink,teleport"),
        ("cache.link", "hardlink,,copy"),
    ],
)
def test_parse_value_rejects(key: str, raw: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_value(key, raw)
    assert f"`{key}`" in exc.value.message
    assert repr(raw) in exc.value.message


@pytest.mark.parametrize(
    "key",
    [
        "core.nope",
        "nope",
        "core",
        "cache",
        "remote",
        "remote.origin",
        "core.hash.extra",
        "Core.hash",
        "cache.links",
    ],
)
def test_unknown_keys_are_rejected(key: str) -> None:
    with pytest.raises(ConfigError, match="unknown config key") as exc:
        parse_value(key, "1")
    assert f"`{key}`" in exc.value.message
    assert exc.value.hint is not None
    assert "core.hash" in exc.value.hint
    with pytest.raises(ConfigError):
        check_key(key)


def test_known_keys_pass_check_key() -> None:
    for key in [*SCHEMA, "remote.origin.url", "remote.s3.client.region"]:
        check_key(key)


# --- writing config files -------------------------------------------------------------------


def test_set_value_creates_file_and_tables(paths: dict[str, str]) -> None:
    path = paths["project"]
    set_value(path, "remote.origin.url", "s3://bucket/x")
    assert read(path) == {"remote": {"origin": {"url": "s3://bucket/x"}}}
    assert mode_of(path) == 0o644
    assert Config.load(paths, {}).get("remote.origin.url") == "s3://bucket/x"


def test_set_value_keeps_other_keys(paths: dict[str, str]) -> None:
    path = paths["project"]
    write(path, '[core]\nhash = "sha256"\n[remote.a]\nurl = "x"\n[remote.b]\nurl = "y"\n')
    set_value(path, "remote.a.url", "z")
    set_value(path, "core.jobs", 4)
    set_value(path, "cache.link", ["copy"])
    assert read(path) == {
        "core": {"hash": "sha256", "jobs": 4},
        "remote": {"a": {"url": "z"}, "b": {"url": "y"}},
        "cache": {"link": ["copy"]},
    }
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]


def test_set_value_through_a_scalar_names_the_file(paths: dict[str, str]) -> None:
    path = paths["project"]
    write(path, 'remote = "oops"\n')
    with pytest.raises(ConfigError, match="`remote`") as exc:
        set_value(path, "remote.origin.url", "x")
    assert path in exc.value.message
    assert read(path) == {"remote": "oops"}


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
def test_private_file_is_0600(paths: dict[str, str], umask: int) -> None:
    path = paths["local"]
    old = os.umask(umask)
    try:
        set_value(path, "remote.origin.password", "hunter2", private=True)
        assert mode_of(path) == LOCAL_MODE == 0o600
        set_value(path, "remote.origin.user", "me", private=True)
        assert mode_of(path) == 0o600
        assert unset_value(path, "remote.origin.user", private=True) is True
        assert mode_of(path) == 0o600
    finally:
        os.umask(old)
    assert read(path) == {"remote": {"origin": {"password": "hunter2"}}}


def test_public_file_is_0644_whatever_the_umask(paths: dict[str, str]) -> None:
    old = os.umask(0o077)
    try:
        set_value(paths["project"], "core.hash", "sha256")
    finally:
        os.umask(old)
    assert mode_of(paths["project"]) == 0o644


def test_unset_value_removes_key_and_empty_tables(paths: dict[str, str]) -> None:
    path = paths["project"]
    write(
        path,
        '[core]\nhash = "sha256"\n[remote.a]\nurl = "x"\n[remote.b]\nurl = "y"\nregion = "eu"\n',
    )
    assert unset_value(path, "remote.a.url") is True
    assert read(path) == {
        "core": {"hash": "sha256"},
        "remote": {"b": {"url": "y", "region": "eu"}},
    }
    assert unset_value(path, "remote.b.url") is True
    assert read(path) == {"core": {"hash": "sha256"}, "remote": {"b": {"region": "eu"}}}
    assert unset_value(path, "remote.b.region") is True
    assert read(path) == {"core": {"hash": "sha256"}}
    assert unset_value(path, "core.hash") is True
    assert read(path) == {}


def test_unset_value_of_something_not_set(paths: dict[str, str]) -> None:
    path = paths["project"]
    assert unset_value(path, "core.hash") is False  # no file
    assert not os.path.exists(path)
    write(path, '[core]\nhash = "sha256"\nremote = "x"\n')
    with open(path, "rb") as f:
        before = f.read()
    assert unset_value(path, "core.jobs") is False
    assert unset_value(path, "cache.dir") is False
    assert unset_value(path, "remote.origin.url") is False
    assert unset_value(path, "core.remote.name") is False  # through a scalar
    with open(path, "rb") as f:
        assert f.read() == before


def test_rewrites_keep_the_comment_header(paths: dict[str, str]) -> None:
    path = paths["project"]
    header = "# dvlite project config: commit this file\n# never put secrets here\n"
    write(path, header + '[core]\nhash = "sha256"\n')
    set_value(path, "core.jobs", 2)
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(header)
    assert unset_value(path, "core.hash") is True
    with open(path, encoding="utf-8") as f:
        assert f.read().startswith(header)
    assert read(path) == {"core": {"jobs": 2}}


def test_lenient_load_leaves_bad_values_out(paths: dict[str, str]) -> None:
    write(paths["project"], '[core]\nhash = "md5"\njobs = 2\nbogus = 1\n')
    write(paths["local"], '[core]\nhash = "sha256"\n')
    with pytest.raises(ConfigError):
        Config.load(paths, {})
    cfg = Config.load(paths, {"DVLITE_CACHE_LINK": "warp"}, strict=False)
    assert cfg.values == {"core.hash": "sha256", "core.jobs": 2}
    assert "core.bogus" not in cfg.origins
    assert cfg.get("cache.link") == ("reflink", "copy")  # the bad env value is ignored


def test_lenient_load_survives_an_infinite_jobs_count(paths: dict[str, str]) -> None:
    # `dvlite config --unset core.jobs` must still be able to load the config to repair it
    write(paths["project"], '[core]\njobs = inf\nhash = "sha256"\n')
    cfg = Config.load(paths, {}, strict=False)
    assert cfg.values == {"core.hash": "sha256"}


def test_set_then_unset_round_trip(paths: dict[str, str]) -> None:
    path = paths["local"]
    set_value(path, "core.remote", "origin", private=True)
    set_value(path, "remote.origin.url", "/x", private=True)
    cfg = Config.load(paths, {})
    assert cfg.get("core.remote") == "origin"
    assert cfg.origins["core.remote"] == f"`{path}`"
    unset_value(path, "remote.origin.url", private=True)
    unset_value(path, "core.remote", private=True)
    assert read(path) == {}
    assert Config.load(paths, {}).values == {}
