"""Checking an exported artifact, loaded in its own runtime, against the Keras model it came from.

Every format is held to the same test on the same evaluation images. A float export must match:
the largest difference between its probabilities and the Keras model's is within the format's
tolerance, and its top class is the Keras model's wherever the Keras model's two best classes are
further apart than that tolerance (closer ones are a tie that rounding may break either way).
An int8 export is approximate by design: a borderline image's probabilities can move by 0.1 or
more, so what is bounded is the typical error, the mean over images of each one's largest difference.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from zoo.common.errors import ZooError
from zoo.data.preprocess import Preprocessing
from zoo.deploy.artifact import Artifact

MIXED_PRECISION_TOLERANCE = 1e-2  # float16/bfloat16 activations round to about 3 significant digits


@dataclasses.dataclass(frozen=True)
class Differences:
    """Absolute probability differences to the Keras model: the largest, and the mean of each image's largest."""

    max: float
    mean: float


def keras_probabilities(model: keras.Model, preprocessing: Preprocessing, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(preprocessing.normalize(tf.constant(images)), training=False), dtype=np.float32)


def verify(artifact: Artifact, model: keras.Model, preprocessing: Preprocessing, images: np.ndarray,
           tolerance: float, bounded: Literal["max", "mean"] = "max") -> Differences:
    """The differences of `artifact` to `model` on `images`; a ZooError if the `bounded` one exceeds `tolerance`."""
    if any(layer.dtype_policy.compute_dtype != "float32" for layer in model.layers):
        tolerance = max(tolerance, MIXED_PRECISION_TOLERANCE)
    expected = keras_probabilities(model, preprocessing, images)
    received = artifact.predict(images)
    if received.shape != expected.shape:
        raise ZooError(f"{artifact.format}: expected probabilities of shape {expected.shape} from the export, "
                       f"received {received.shape}; it was not installed")
    per_image = np.abs(received - expected).max(axis=1)
    differences = Differences(float(per_image.max()), float(per_image.mean()))
    disagree = 0
    if bounded == "max":
        top2 = np.sort(expected, axis=1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] > tolerance
        disagree = int(np.sum(decided & (received.argmax(1) != expected.argmax(1))))
    if getattr(differences, bounded) > tolerance or disagree:
        raise ZooError(f"{artifact.format}: the export disagrees with the Keras model on {len(images)} evaluation "
                       f"images ({bounded} probability difference {getattr(differences, bounded):.2e}, tolerance "
                       f"{tolerance:.0e}; {disagree} different top classes); it was not installed")
    return differences
