"""Train a random forest on the prepared digits; one thread and a fixed seed, so the pickled
model is the same bytes every time it is trained from the same data and parameters."""

import os
import pickle
import tomllib

import numpy as np
from sklearn.ensemble import RandomForestClassifier

with open("params.toml", "rb") as f:
    params = tomllib.load(f)["train"]

x_train = np.load("data/prepared/x_train.npy")
y_train = np.load("data/prepared/y_train.npy")
model = RandomForestClassifier(n_estimators=params["n_estimators"], max_depth=params["max_depth"],
                               random_state=params["seed"], n_jobs=1)
model.fit(x_train, y_train)
os.makedirs("models", exist_ok=True)
with open("models/model.pkl", "wb") as f:
    pickle.dump(model, f, protocol=5)
print(f"train: {params['n_estimators']} trees of depth <= {params['max_depth']}")
