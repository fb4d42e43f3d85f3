"""``dvlite metrics diff --fail-if RULE``: the grammar, what fails, exit codes 0/1/2."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import pytest

from dvlite.errors import UsageError
from dvlite.ops.thresholds import parse_rule
from tests.cli.support import assert_error
from tests.metrics_project import METRICS, make_project

if TYPE_CHECKING:
    from tests.cli.conftest import Cli
    from tests.helpers import TmpRepo

# committed: acc 0.75, loss.train 0.5, loss.val 0.625, sub/scores.toml f1 0.5
WORSE = {"acc": 0.7, "loss": {"train": 0.5, "val": 0.7}, "tag": "v1"}


@pytest.fixture
def project(tmp_repo: TmpRepo) -> TmpRepo:
    return make_project(tmp_repo)


def _write(repo: TmpRepo, metrics: dict[str, object]) -> None:
    repo.gen({"metrics.json": json.dumps(metrics)})


@pytest.mark.parametrize(("text", "expected"), [
    ("acc < 0.9", ("value", "<", 0.9, None, "acc")),
    ("acc<-0.01", ("change", "<", -0.01, None, "acc")),
    ("acc <= +0.5", ("change", "<=", 0.5, None, "acc")),
    ("loss > +5%", ("percent", ">", 5.0, None, "loss")),
    ("loss.val >= 5%", ("percent", ">=", 5.0, None, "loss.val")),
    ("  eval/m.json:f1 < 1e-1 ", ("value", "<", 0.1, "eval/m.json", "f1")),
    ("loss.* > -.5", ("change", ">", -0.5, None, "loss.*")),
])
def test_rule_grammar(text: str, expected: tuple[object, ...]) -> None:
    rule = parse_rule(text)
    assert (rule.kind, rule.op, rule.limit, rule.file, rule.key) == expected


@pytest.mark.parametrize("text", [
    "acc", "acc <", "< 0.9", "acc == 0.9", "acc ~ 1", "acc < abc", "acc < 0.9 %%", ":acc < 1",
    "file: < 1", "acc < 1 2", "acc < ++1",
])
def test_malformed_rules_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_rule(text)
    assert info.value.hint


def test_a_drop_beyond_the_change_limit_exits_1_with_the_table(project: TmpRepo,
                                                                cli: Cli) -> None:
    _write(project, WORSE)
    result = cli("metrics", "diff", "--fail-if", "acc < -0.01")
    assert result.code == 1, result
    assert result.out.splitlines()[0] == "path\tkey\told\tnew\tchange"  # the diff, as ever
    err = result.err_lines
    assert "metrics that got worse:" in err
    table = err[err.index("metrics that got worse:") + 1:]
    assert table[0].split() == ["path", "key", "old", "new", "change", "rule"]
    assert table[1].split() == ["metrics.json", "acc", "0.75", "0.7", "-0.05", "acc", "<",
                                "-0.01"]
    error = assert_error(dataclasses.replace(result, out=""), after_messages=True)
    assert error == "error: 1 metric(s) crossed a `--fail-if` threshold: `acc`"


@pytest.mark.parametrize(("rule", "code"), [
    ("acc < -0.1", 0),       # dropped 0.05: within the limit
    ("acc < -0.05", 0),      # exactly at the limit is not beyond it
    ("acc < -0.04", 1),
    ("acc < 0.9", 1),        # the value itself
    ("acc < 0.6", 0),
    ("loss.val > +5%", 1),   # 0.625 -> 0.7 is +12%
    ("loss.val > +12%", 0),
    ("loss.val > 20%", 0),
    ("loss.* > +0.05", 1),   # a glob: loss.val rose by 0.075
    ("loss.train > +0%", 0),  # unchanged
    ("sub/scores.toml:f1 < 0.6", 1),  # a file named: f1 is 0.5 on both sides
    ("metrics.json:acc > 0.65", 1),
])
def test_thresholds(project: TmpRepo, cli: Cli, rule: str, code: int) -> None:
    _write(project, WORSE)
    result = cli("metrics", "diff", "--fail-if", rule)
    assert result.code == code, result
    if code == 0:
        assert "no metric crossed" in result.err
    else:
        assert "metrics that got worse:" in result.err


def test_several_rules_and_an_unchanged_metric(project: TmpRepo, cli: Cli) -> None:
    result = cli("metrics", "diff", "--fail-if", "acc < -0.01", "--fail-if", "loss.val > 0.6")
    assert result.code == 1, result
    assert result.out.splitlines() == ["path\tkey\told\tnew\tchange"]  # nothing changed
    assert "loss.val" in next(e for e in result.err_lines if e.startswith("error: "))


def test_a_metric_that_disappeared_fails(project: TmpRepo, cli: Cli) -> None:
    _write(project, {"loss": {"train": 0.5, "val": 0.625}})
    result = cli("metrics", "diff", "--fail-if", "acc < -0.01")
    assert result.code == 1, result
    assert "metrics.json  acc" in result.err


def test_a_new_metric_only_meets_value_rules(project: TmpRepo, cli: Cli) -> None:
    _write(project, {**json.loads(METRICS), "f2": 0.1})
    assert cli("metrics", "diff", "--fail-if", "f2 < -0.01").code == 0
    assert cli("metrics", "diff", "--fail-if", "f2 < 0.5").code == 1


def test_json_and_md_keep_their_shape(project: TmpRepo, cli: Cli) -> None:
    _write(project, WORSE)
    result = cli("metrics", "diff", "--json", "--fail-if", "acc < -0.01")
    assert result.code == 1
    assert [row["key"] for row in json.loads(result.out)] == ["acc", "loss.val"]
    md = cli("metrics", "diff", "--md", "--fail-if", "acc < -0.1")
    assert md.code == 0
    assert md.out.splitlines()[0] == "| Path | Key | Old | New | Change |"


@pytest.mark.parametrize("rule", ["acc <", "acc == 1", "acc < x"])
def test_malformed_rule_exits_2_before_reading_anything(project: TmpRepo, cli: Cli,
                                                        rule: str) -> None:
    assert_error(cli("metrics", "diff", "--fail-if", rule), "--fail-if", code=2)


def test_a_rule_naming_no_metric_exits_2(project: TmpRepo, cli: Cli) -> None:
    assert_error(cli("metrics", "diff", "--fail-if", "accuracy < 0.9"), "accuracy", code=2)
    assert_error(cli("metrics", "diff", "--fail-if", "tag < 1"), "tag", code=2)  # a string


def test_quiet_keeps_the_table_it_is_part_of_the_error(project: TmpRepo, cli: Cli) -> None:
    _write(project, WORSE)
    passing = cli("-q", "metrics", "diff", "--fail-if", "acc < -0.1")
    assert (passing.code, passing.err) == (0, "")
    failing = cli("-q", "metrics", "diff", "--fail-if", "acc < -0.01")
    assert failing.code == 1
    assert failing.err_lines[0] == "metrics that got worse:"
