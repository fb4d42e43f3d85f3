"""The remote contract on every backend, each a real server on 127.0.0.1 (see conftest.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from tests.remote.contract import RemoteContract, assert_missing_backend

if TYPE_CHECKING:
    from tests.helpers import TmpRepo
    from tests.remote.servers import Backend


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each contract test runs on the backends its `@on(...)` names."""
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", metafunc.function.backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """A fresh, empty store on the backend named by the parameter."""
    store: Backend = request.getfixturevalue(f"{request.param}_remote")
    return store


class TestBackends(RemoteContract):
    pass


def test_an_unknown_protocol_asks_for_its_backend(tmp_repo: TmpRepo) -> None:
    assert_missing_backend(tmp_repo, "nosuchfs://bucket/store", "pip install")


def test_a_missing_backend_names_the_extra_to_install(
    tmp_repo: TmpRepo, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if `dvlite[gs]` were not installed
    assert_missing_backend(tmp_repo, "gs://bucket/store", "pip install 'dvlite[gs]'")
