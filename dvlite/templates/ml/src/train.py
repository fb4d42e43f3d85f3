"""Stage `train`: fit a logistic regression by gradient descent; write models/model.json.

Only the standard library: the template runs anywhere Python does. Swap in
scikit-learn or PyTorch here when the project grows; the pipeline stays the same.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from common import params, probability, read_rows


def main() -> None:
    settings = params("train")
    header, rows = read_rows("data/prepared/train.csv")
    features = [row[:-1] for row in rows]
    labels = [row[-1] for row in rows]
    columns = list(zip(*features, strict=True))
    model = {
        "features": header[:-1],
        "means": [statistics.fmean(c) for c in columns],
        "scales": [statistics.pstdev(c) or 1.0 for c in columns],
        "weights": [0.0] * len(columns),
        "bias": 0.0,
    }
    rate, l2 = settings["learning_rate"], settings["l2"]
    for _ in range(settings["epochs"]):
        errors = [probability(model, x) - y for x, y in zip(features, labels, strict=True)]
        for j, (mean, scale) in enumerate(zip(model["means"], model["scales"], strict=True)):
            gradient = statistics.fmean(e * (x[j] - mean) / scale
                                        for e, x in zip(errors, features, strict=True))
            model["weights"][j] -= rate * (gradient + l2 * model["weights"][j])
        model["bias"] -= rate * statistics.fmean(errors)
    Path("models").mkdir(exist_ok=True)
    Path("models/model.json").write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
    print(f"train: {settings['epochs']} epochs on {len(rows)} rows")


if __name__ == "__main__":
    main()
