"""Fixtures for the in-process CLI tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pytest

from tests.cli.support import CliResult, run_main

if TYPE_CHECKING:
    from tests.helpers import TmpRepo, Tree


class Cli(Protocol):
    def __call__(self, *args: str) -> CliResult: ...


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("status", "--json")`` runs ``dvlite.cli.main`` and returns code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        return run_main(capsys, *args)

    return run


A_CSV = "x,y\n1,2\n"
DATA: Tree = {"a.csv": A_CSV, "sub": {"b.bin": b"\x00\x01\x02" * 50}}
DATA_SIZE = len(A_CSV) + 150
MODEL = b"model weights v1\n"


@pytest.fixture
def tracked(tmp_repo: TmpRepo) -> TmpRepo:
    """A repo tracking folder ``data`` and file ``model.bin``, pointers committed to git."""
    tmp_repo.gen({"data": DATA, "model.bin": MODEL})
    tmp_repo.dvl_add("data", "model.bin")
    tmp_repo.git_commit("track data and model")
    return tmp_repo
