"""Score the model on the test split: metrics.json, and the confusion matrix as a PNG."""

import json
import os
import pickle
import struct
import zlib

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

x_test = np.load("data/prepared/x_test.npy")
y_test = np.load("data/prepared/y_test.npy")
with open("models/model.pkl", "rb") as f:
    model = pickle.load(f)  # noqa: S301  (our own model, just written by train)
predicted = model.predict(x_test)

with open("metrics.json", "w") as f:
    json.dump({"accuracy": round(float(accuracy_score(y_test, predicted)), 4),
               "f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 4)},
              f, indent=2)
    f.write("\n")


def png(pixels: np.ndarray) -> bytes:
    """A grayscale PNG of ``pixels`` (uint8 rows), written with zlib alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    height, width = pixels.shape
    rows = b"".join(b"\0" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


matrix = confusion_matrix(y_test, predicted)
shade = (255 - 255 * matrix / matrix.max()).astype(np.uint8)  # dark = many
os.makedirs("plots", exist_ok=True)
with open("plots/confusion.png", "wb") as f:
    f.write(png(np.kron(shade, np.ones((20, 20), dtype=np.uint8))))
print(f"evaluate: accuracy {accuracy_score(y_test, predicted):.4f}")
