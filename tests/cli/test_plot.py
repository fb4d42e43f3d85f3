"""``dvlite metrics plot``: a metric across commits, drawn as HTML, SVG or PNG."""

from __future__ import annotations

import json
import re
import struct
import sys
from typing import TYPE_CHECKING

import pytest

from tests.cli.support import assert_error
from tests.metrics_project import make_project

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _commit_acc(repo: TmpRepo, acc: float, message: str) -> None:
    repo.gen({"metrics.json": json.dumps({"acc": acc, "loss": 1 - acc})})
    repo.git_commit(message)


@pytest.fixture
def history(tmp_repo: TmpRepo) -> TmpRepo:
    """A commit without a pipeline, then four with acc 0.75, 0.5, 0.8, 0.9."""
    tmp_repo.gen({"README": "before the pipeline\n"})
    tmp_repo.git_commit("no pipeline yet")
    make_project(tmp_repo)  # commits acc 0.75
    for acc, message in ((0.5, "worse"), (0.8, "better"), (0.9, "best")):
        _commit_acc(tmp_repo, acc, message)
    return tmp_repo


def _points(svg: str) -> list[str]:
    return re.findall(r'<circle class="point"[^>]*><title>([^<]*)</title>', svg)


def test_html_is_self_contained_with_one_point_per_commit(history: TmpRepo, cli: Cli) -> None:
    result = cli("metrics", "plot", "acc", "-o", "acc.html")
    assert result.code == 0, result
    assert result.out == ""
    assert "4 revision(s) (1 without it skipped)" in result.err
    page = (history.root / "acc.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1
    titles = _points(page)
    assert [t.split(": ")[1].split(" ")[0] for t in titles] == ["0.75", "0.5", "0.8", "0.9"]
    assert "best" in titles[-1]  # the commit's subject on hover
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from anywhere


def test_svg_and_json(history: TmpRepo, cli: Cli) -> None:
    result = cli("metrics", "plot", "metrics.json:loss", "-o", "out/loss.svg", "--json")
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["metric"] == "metrics.json:loss"
    assert doc["skipped"] == 2  # no pipeline yet; `loss` a table, not a number, at v1
    assert [p["subject"] for p in doc["points"]] == ["worse", "better", "best"]
    assert [p["value"] for p in doc["points"]] == pytest.approx([0.5, 0.2, 0.1])
    assert set(doc["points"][0]) == {"label", "commit", "date", "subject", "path", "value"}
    svg = (history.root / "out" / "loss.svg").read_text()
    assert svg.startswith("<svg xmlns=")
    assert len(_points(svg)) == 3


def test_revisions_in_the_order_given_and_all_commits(history: TmpRepo, cli: Cli) -> None:
    history.git("branch", "feature", "HEAD~1")
    history.git("tag", "v1", "HEAD~3")
    result = cli("metrics", "plot", "acc", "--rev", "main", "--rev", "feature", "--rev", "v1",
                 "-o", "b.html", "--json")
    assert result.code == 0, result
    points = json.loads(result.out)["points"]
    assert [(p["label"], p["value"]) for p in points] == [
        ("main", 0.9), ("feature", 0.8), ("v1", 0.75)]
    assert ">feature<" in (history.root / "b.html").read_text()  # the x axis names them

    history.git("checkout", "-q", "-b", "side", "HEAD~2")
    _commit_acc(history, 0.6, "side branch")
    history.git("checkout", "-q", "main")
    first_parent = json.loads(cli("metrics", "plot", "acc", "-o", "c.html", "--json").out)
    assert len(first_parent["points"]) == 4  # main's own history
    every = json.loads(cli("metrics", "plot", "acc", "--all-commits", "-o", "c.html",
                           "--json").out)
    assert sorted(p["value"] for p in every["points"]) == [0.5, 0.6, 0.75, 0.8, 0.9]


def test_png_has_the_signature_and_size(history: TmpRepo, cli: Cli) -> None:
    pytest.importorskip("matplotlib")
    result = cli("metrics", "plot", "acc", "-o", "acc.png")
    assert result.code == 0, result
    data = (history.root / "acc.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (800, 400)


def test_png_without_matplotlib_says_what_to_install(history: TmpRepo, cli: Cli,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    line = assert_error(cli("metrics", "plot", "acc", "-o", "acc.png"), "matplotlib")
    assert "dvlite[plots]" in cli("metrics", "plot", "acc", "-o", "acc.png").err
    assert line
    assert not (history.root / "acc.png").exists()
    assert cli("metrics", "plot", "acc", "-o", "acc.html").code == 0  # HTML needs nothing


def test_usage_errors(history: TmpRepo, cli: Cli, tmp_path: Path) -> None:
    assert_error(cli("metrics", "plot", "acc", "-o", "acc.pdf"), "acc.pdf", code=2)
    assert_error(cli("metrics", "plot", "acc"), "--out", code=2)
    assert_error(cli("metrics", "plot", "acc", "--rev", "main", "--all-commits", "-o", "a.svg"),
                 "--all-commits", code=2)
    assert_error(cli("metrics", "plot", "acc", "--rev", "nope", "-o", "a.svg"), "nope")
    assert_error(cli("metrics", "plot", "accuracy", "-o", "a.svg"), "accuracy")
    assert not list(history.root.glob("a.*"))


def test_a_key_in_two_files_must_be_named_with_its_file(history: TmpRepo, cli: Cli) -> None:
    history.gen({"sub": {"scores.toml": "acc = 0.1\n"}})
    history.git_commit("acc in two files")
    result = cli("metrics", "plot", "acc", "-o", "a.html")
    assert_error(result, "metrics.json", "sub/scores.toml", code=2)
    assert "metrics.json:acc" in result.err
    assert cli("metrics", "plot", "sub/scores.toml:acc", "-o", "a.html").code == 0
