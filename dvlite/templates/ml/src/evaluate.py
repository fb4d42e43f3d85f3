"""Stage `evaluate`: score the model on the test set; write metrics.json (kept in git)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from common import probability, read_rows


def main() -> None:
    model = json.loads(Path("models/model.json").read_text())
    _, rows = read_rows("data/prepared/test.csv")
    hits = loss = 0.0
    true_pos = false_pos = false_neg = 0
    for row in rows:
        p, label = probability(model, row[:-1]), row[-1]
        predicted = 1.0 if p >= 0.5 else 0.0
        hits += predicted == label
        loss -= math.log(max(p if label else 1 - p, 1e-12))
        true_pos += predicted == label == 1
        false_pos += predicted == 1 and label == 0
        false_neg += predicted == 0 and label == 1
    metrics = {
        "accuracy": round(hits / len(rows), 4),
        "loss": round(loss / len(rows), 4),
        "precision": round(true_pos / max(true_pos + false_pos, 1), 4),
        "recall": round(true_pos / max(true_pos + false_neg, 1), 4),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print("evaluate: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
