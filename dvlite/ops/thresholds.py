"""``dvlite metrics diff --fail-if RULE``: thresholds that turn a metrics diff into a CI check.

A rule is ``METRIC OP NUMBER``::

    rule    := metric op limit
    metric  := [file ":"] key        key flattened with dots; * and ? match any characters
    op      := "<" | "<=" | ">" | ">="
    limit   := number                the new value itself:          acc < 0.9
             | ("+" | "-") number    the change, new - old:          acc < -0.01
             | ["+" | "-"] number "%"  the change relative to old:   loss > +5%

The rule says what fails: ``acc < -0.01`` fails when accuracy dropped by more
than 0.01. A sign is what makes a number a change, so ``acc < 0.9`` is about
the value and ``acc < +0.9`` about the change. A metric present at the old
revision and gone at the new one fails every rule naming it (the evaluation
that wrote it probably broke); a new metric has no change, so only value
rules apply to it. A rule that names no number metric on either side is a
usage error, so a misspelt key cannot make a check pass silently.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dvlite.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dvlite.ops.metrics import DiffRow

Kind = Literal["value", "change", "percent"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_RULE = re.compile(
    r"^\s*(?P<metric>[^<>=\s]+)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<limit>(?P<sign>[+-])?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?P<pct>%)?\s*$")
GRAMMAR_HINT = ("write METRIC OP NUMBER, e.g. `acc < 0.9` (the value), `acc < -0.01` (the "
                "change) or `loss > +5%` (the change relative to the old value)")


@dataclass(frozen=True)
class Rule:
    text: str  # as the user wrote it
    file: str | None  # a metrics file, or any
    key: str  # may hold * and ?
    op: str
    kind: Kind
    limit: float

    def matches(self, path: str, key: str) -> bool:
        return (self.file is None or self.file == path) and fnmatch.fnmatchcase(key, self.key)


@dataclass(frozen=True)
class Breach:
    """A metric that a rule says got worse."""

    path: str
    key: str
    old: int | float | None
    new: int | float | None  # None: the metric is gone
    change: int | float | None  # new - old
    rule: str


def parse_rule(text: str) -> Rule:
    """One ``--fail-if`` rule; a malformed one is a UsageError (exit 2)."""
    found = _RULE.match(text)
    if found is None:
        raise UsageError(f"cannot read `--fail-if {text!r}`", hint=GRAMMAR_HINT)
    metric = found["metric"]
    file, sep, key = metric.rpartition(":")
    if sep and not (file and key):
        raise UsageError(f"cannot read the metric `{metric}` in `--fail-if {text!r}`",
                         hint="name it `key` or `file:key`, e.g. `metrics.json:acc`")
    kind: Kind = "percent" if found["pct"] else "change" if found["sign"] else "value"
    return Rule(text.strip(), file or None, key, found["op"], kind, float(found["limit"]))


def check(rows: Iterable[DiffRow], rules: Iterable[Rule]) -> list[Breach]:
    """The breaches of ``rules`` among ``rows`` (every key of both sides, unchanged ones
    included: a value rule applies to a metric that did not move)."""
    rows = list(rows)
    breaches: list[Breach] = []
    for rule in rules:
        matched = [r for r in rows if rule.matches(r.path, r.key)
                   and (_number(r.old) or _number(r.new))]
        if not matched:
            raise UsageError(f"`--fail-if {rule.text!r}` names no number metric at either "
                             "revision", hint="list the metrics with `dvlite metrics show`")
        for row in matched:
            if _fails(rule, row):
                breaches.append(Breach(row.path, row.key, _as_number(row.old),
                                       _as_number(row.new), row.delta, rule.text))
    return breaches


def _fails(rule: Rule, row: DiffRow) -> bool:
    if not _number(row.new):
        return _number(row.old)  # it was there and is gone
    new = float(row.new)
    if rule.kind == "value":
        return _OPS[rule.op](new, rule.limit)
    if not _number(row.old):
        return False  # a new metric has no change to judge
    old = float(row.old)
    change = float(row.delta if row.delta is not None else new - old)  # delta is rounded:
    # 0.74 - 0.75 must be -0.01, not -0.010000000000000009, at a `< -0.01` limit
    if rule.kind == "percent":
        change = 0.0 if change == 0 else (
            float(f"{change / abs(old) * 100:.12g}") if old else math.copysign(math.inf, change))
    return _OPS[rule.op](change, rule.limit)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: object) -> int | float | None:
    return value if isinstance(value, int | float) and _number(value) else None
