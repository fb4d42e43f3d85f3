"""Split scikit-learn's bundled digits dataset (no download) into train and test arrays."""

import os
import tomllib

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

with open("params.toml", "rb") as f:
    params = tomllib.load(f)["prepare"]

digits = load_digits()
x_train, x_test, y_train, y_test = train_test_split(
    digits.data, digits.target, test_size=params["test_size"], random_state=params["seed"],
    stratify=digits.target,
)
os.makedirs("data/prepared", exist_ok=True)
for name, array in (("x_train", x_train), ("x_test", x_test), ("y_train", y_train),
                    ("y_test", y_test)):
    np.save(f"data/prepared/{name}.npy", array)
print(f"prepare: {len(y_train)} training and {len(y_test)} test images")
