"""Stage `prepare`: shuffle the raw readings and split off a test set."""

from __future__ import annotations

import random
from pathlib import Path

from common import params, read_rows, write_rows


def main() -> None:
    settings = params("prepare")
    header, rows = read_rows("data/raw/sensors.csv")
    random.Random(settings["seed"]).shuffle(rows)  # noqa: S311  (a split, not a secret)
    n_test = round(len(rows) * settings["test_fraction"])
    out = Path("data/prepared")
    out.mkdir(parents=True, exist_ok=True)
    write_rows(str(out / "test.csv"), header, rows[:n_test])
    write_rows(str(out / "train.csv"), header, rows[n_test:])
    print(f"prepare: {len(rows) - n_test} training rows, {n_test} test rows")


if __name__ == "__main__":
    main()
