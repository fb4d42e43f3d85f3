"""Credentials never reach git-tracked files, stdout or stderr, tracebacks included."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from dvlite.cli.output import error

if TYPE_CHECKING:
    import pytest

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

PASSWORD = "hunter2-not-for-logs"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_secret_options_stay_out_of_the_project_config(tmp_repo: TmpRepo, cli: Cli) -> None:
    assert cli("remote", "add", "store", "s3://bucket/store").code == 0
    refused = cli("remote", "modify", "store", "secret", PASSWORD)
    assert refused.code == 1
    assert "--local" in refused.err
    assert PASSWORD not in (tmp_repo.root / ".dvlite" / "config.toml").read_text()

    assert cli("remote", "modify", "--local", "store", "secret", PASSWORD).code == 0
    local = tmp_repo.root / ".dvlite" / "config.local.toml"
    assert PASSWORD in local.read_text()
    assert local.stat().st_mode & 0o777 == 0o600


def test_config_never_prints_a_secret(tmp_repo: TmpRepo, cli: Cli) -> None:
    cli("remote", "add", "store", "s3://bucket/store")
    cli("remote", "modify", "--local", "store", "password", PASSWORD)
    shown = cli("config", "remote.store.password")
    assert shown.code == 0
    assert shown.out.strip() == "***"
    assert PASSWORD not in shown.out + shown.err


def test_url_password_is_masked_in_errors_and_tracebacks(tmp_repo: TmpRepo, cli: Cli) -> None:
    tmp_repo.gen({"model.bin": b"weights"})
    tmp_repo.dvl_add("model.bin")
    url = f"ssh://me:{PASSWORD}@127.0.0.1:{closed_port()}/store"
    assert cli("remote", "add", "--local", "-d", "box", url).code == 0

    listed = cli("remote", "list")
    plain = cli("push")
    verbose = cli("-v", "push")

    assert "me:***@127.0.0.1" in listed.out
    assert plain.code == verbose.code == 1
    assert "Traceback" in verbose.err  # -v really printed the chain
    for result in (listed, plain, verbose):
        assert PASSWORD not in result.out + result.err


def test_verbose_traceback_masks_url_passwords(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise ConnectionError(f"cannot open https://me:{PASSWORD}@example.invalid/store")
    except ConnectionError:
        error("push failed", None, verbose=True)
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "https://me:***@example.invalid/store" in err
    assert PASSWORD not in err
