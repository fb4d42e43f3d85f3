"""What the stages share: the parameters, CSV files of readings, and the model's formula."""

from __future__ import annotations

import csv
import math
import tomllib
from typing import Any

Row = list[float]


def params(section: str) -> dict[str, Any]:
    """One table of params.toml (dvlite.toml lists the keys each stage depends on)."""
    with open("params.toml", "rb") as f:
        table: dict[str, Any] = tomllib.load(f)[section]
    return table


def read_rows(path: str) -> tuple[list[str], list[Row]]:
    """The header and the rows of a CSV file of numbers; the last column is the label."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [[float(value) for value in row] for row in reader if row]


def write_rows(path: str, header: list[str], rows: list[Row]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in rows)


def _cell(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def probability(model: dict[str, Any], features: Row) -> float:
    """The model's probability that a reading is faulty (logistic regression)."""
    scaled = [(x - m) / s for x, m, s in zip(features, model["means"], model["scales"],
                                             strict=True)]
    z = model["bias"] + sum(w * x for w, x in zip(model["weights"], scaled, strict=True))
    return 1.0 / (1.0 + math.exp(-z))
