"""Credentials (secret remote options, passwords and tokens in remote URLs) never reach stdout,
stderr, exception text or chains, `-v` tracebacks, or any file git tracks or dvlite writes
besides the config that holds them; the files that may hold them are the owner's alone.

tests/cli/test_secrets.py covers the basics (refused in the project config, `config KEY`
prints `***`, a URL password in a failing push); this adds a backend whose own errors quote
the credentials it was given, the user config, URL tokens, and a sweep of every file."""

from __future__ import annotations

import os
import subprocess
import traceback
from typing import TYPE_CHECKING, Any

import fsspec
import pytest
from fsspec.spec import AbstractFileSystem

import dvlite.api
from dvlite.errors import DvliteError
from dvlite.ops import sync
from dvlite.remote import open_remote
from dvlite.storage.hashing import Oid
from tests.cli.support import CliResult, assert_error, run_main

if TYPE_CHECKING:
    from pathlib import Path

    from tests.helpers import TmpRepo

PASSWORD = "pw-Zq8-never-shown"  # in the URL
TOKEN = "tok-Xk3-never-shown"  # a secret option
URL = f"leaky://me:{PASSWORD}@host/store"


class LeakyFileSystem(AbstractFileSystem):
    """A backend that fails every call with a message quoting its URL and token, as real
    ones sometimes do (a request URL in an HTTP error, an auth header in a repr)."""

    protocol = "leaky"
    cachable = False

    def __init__(self, token: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token = token

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        try:
            raise OSError(f"auth header Bearer {self.token}")  # chained below, as in a backend
        except OSError as exc:
            where = URL if self.token else "leaky://host/store"  # no token: nothing to hide
            raise ConnectionError(f"cannot reach {where} with token={self.token}") from exc

    info = ls = find = exists = isdir = _open = put_file = get_file = makedirs = mkdir = _fail
    rm_file = pipe_file = cat_file = _fail


fsspec.register_implementation("leaky", LeakyFileSystem, clobber=True)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    result = run_main(capsys, *args)
    assert PASSWORD not in result.out + result.err, result
    assert TOKEN not in result.out + result.err, result
    return result


@pytest.fixture
def leaky(tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str]) -> TmpRepo:
    """A repo with tracked data whose default remote, in config.local.toml, is leaky."""
    tmp_repo.gen({"model.bin": b"weights\n", "data": {"a.csv": "a\n"}})
    tmp_repo.dvl_add("model.bin", "data")
    assert cli(capsys, "remote", "add", "--local", "-d", "vault", URL).code == 0
    assert cli(capsys, "remote", "modify", "--local", "vault", "token", TOKEN).code == 0
    tmp_repo.git_commit("data")
    tmp_repo.reopen()
    return tmp_repo


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "-v"])
@pytest.mark.parametrize("command", [("push",), ("fetch",), ("pull",), ("status", "--remote"),
                                     ("gc", "--cloud", "--force"), ("ls", "--json")])
def test_backend_errors_quoting_credentials_are_masked(
    leaky: TmpRepo, capsys: pytest.CaptureFixture[str], command: tuple[str, ...],
    verbose: bool,
) -> None:
    (leaky.root / "model.bin").unlink()  # so pull and fetch have something to get
    leaky.repo.cache.delete(leaky.repo.cache.hash_of(b"weights\n"))
    result = cli(capsys, *(("-v",) if verbose else ()), *command)
    if result.code and verbose:
        assert "Traceback" in result.err  # -v really printed what it could
    elif result.code:
        assert_error(result, "vault", after_messages=True)


def test_an_exception_raised_to_python_callers_holds_no_credential(leaky: TmpRepo) -> None:
    """The API raises dvlite errors; their text, and the chain a traceback prints, are clean
    (the backend's own exception is left out of the chain when it quotes a credential)."""
    leaky.repo.cache.delete(leaky.repo.cache.hash_of(b"weights\n"))
    for call in (lambda: sync.push(leaky.repo),
                 lambda: dvlite.api.read("model.bin", repo=str(leaky.root), mode="rb")):
        with pytest.raises(DvliteError) as info:
            call()
        printed = "".join(traceback.format_exception(info.value))
        for text in (printed, str(info.value), repr(info.value), str(info.value.hint)):
            assert PASSWORD not in text
            assert TOKEN not in text


def test_a_clean_backend_error_keeps_its_chain() -> None:
    """Dropping the chain is only for errors that would show a credential."""
    store = open_remote("plain", "leaky://host/store", {})  # no credentials at all
    with pytest.raises(DvliteError) as info:
        store.exists(Oid("0" * 32))
    assert isinstance(info.value.__cause__, ConnectionError)


def test_an_unexpected_error_is_masked_too(
    leaky: TmpRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug that lets a raw exception through the error boundary is masked there: the
    `unexpected:` line and the -v traceback."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"bug while talking to {URL} (token {TOKEN})")

    monkeypatch.setattr(sync, "push", broken)
    plain = cli(capsys, "push")
    assert plain.err.startswith("error: unexpected: RuntimeError: bug while talking to")
    assert "me:***@host" in plain.err
    verbose = cli(capsys, "-v", "push")
    assert "Traceback" in verbose.err
    assert "token ***" in verbose.err


@pytest.mark.parametrize("url", [
    f"https://me:{PASSWORD}@example.invalid/store",
    f"https://{TOKEN}@example.invalid/store",  # a token as the user name
    f"webdavs://me:{PASSWORD}@example.invalid/store",
])
def test_a_url_with_credentials_stays_out_of_the_project_config(
    tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str], url: str,
) -> None:
    project = tmp_repo.root / ".dvlite" / "config.toml"
    refused = cli(capsys, "remote", "add", "origin", url)
    assert_error(refused)
    assert "--local" in refused.err
    assert PASSWORD not in project.read_text()
    assert TOKEN not in project.read_text()

    assert cli(capsys, "remote", "add", "--local", "origin", url).code == 0
    listed = cli(capsys, "remote", "list")
    shown = cli(capsys, "config", "remote.origin.url")
    assert "example.invalid/store" in listed.out
    assert shown.out.strip().endswith("@example.invalid/store")
    assert "***" in shown.out


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
@pytest.mark.parametrize("level", ["--local", "--user"])
def test_files_that_may_hold_credentials_are_the_owners_alone(
    tmp_repo: TmpRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    umask: int, level: str,
) -> None:
    """`config.local.toml` and the user config are created 0600 (the user config was 0644),
    and a rewrite of one made by hand with looser bits tightens it."""
    user_config = tmp_repo.root.parent / "home-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user_config))
    path = (tmp_repo.root / ".dvlite" / "config.local.toml" if level == "--local"
            else user_config / "dvlite" / "config.toml")
    old = os.umask(umask)
    try:
        assert cli(capsys, "config", level, "remote.vault.url", "s3://bucket/x").code == 0
        assert path.stat().st_mode & 0o777 == 0o600
        path.chmod(0o664)
        assert cli(capsys, "config", level, "remote.vault.secret_access_key", TOKEN).code == 0
        assert path.stat().st_mode & 0o777 == 0o600
        assert cli(capsys, "config", level, "core.jobs", "3").code == 0
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert TOKEN in path.read_text()
    project = (tmp_repo.root / ".dvlite" / "config.toml").read_text()
    assert TOKEN not in project


def test_no_credential_reaches_any_other_file(
    leaky: TmpRepo, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    """After commands that fail on the remote, commit, and git hooks: only config.local.toml
    holds a credential, in the work tree, `.git` and the cache; git never tracked it."""
    cli(capsys, "push")
    cli(capsys, "-v", "pull")
    cli(capsys, "status", "--remote")
    (leaky.root / "model.bin").write_bytes(b"weights v2\n")
    assert cli(capsys, "commit").code == 0
    assert cli(capsys, "install").code == 0
    leaky.git_commit("v2")
    holders = []
    for folder, _, files in os.walk(leaky.root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if PASSWORD.encode() in data or TOKEN.encode() in data:
                holders.append(os.path.relpath(path, leaky.root))
    assert holders == [".dvlite/config.local.toml"]
    history = subprocess.run(["git", "-C", str(leaky.root), "log", "-p", "--all"],
                             capture_output=True, text=True, check=True).stdout
    assert PASSWORD not in history
    assert TOKEN not in history
    assert ".dvlite/config.local.toml" not in leaky.git("ls-files")
