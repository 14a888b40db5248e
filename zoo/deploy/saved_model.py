"""The SavedModel format: a `serving_default` signature for TF Serving, each weight stored once.

The signature takes `images`, uint8 [batch, height, width, channels] of any batch size and any
size (resized inside, with the training normalisation), and returns `probabilities` (float32
[batch, classes]) and `class` (int64 [batch]); TensorFlow refuses another dtype or rank. The
zoo metadata is `assets.extra/zoo.json`.

Keras's `ExportArchive.track(model)` stores every variable twice (`variables` and
`_all_variables`, keras-team/keras#23553): the archive here tracks nothing but its endpoint,
whose captured variables are saved once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.deploy.artifact import Artifact, Source
from zoo.deploy.graph import serving_function

METADATA = Path("assets.extra") / "zoo.json"


def write_endpoint(serve: Callable[[tf.Tensor], dict[str, tf.Tensor]], spec: tf.TensorSpec, path: Path) -> None:
    """A SavedModel at `path` whose `serving_default` is `serve`, holding the variables it reads and nothing else."""
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def write(source: Source, path: Path) -> None:
    """Writes `source` as a SavedModel directory at `path` (which must not exist)."""
    write_endpoint(*serving_function(source.model, source.preprocessing, any_size=True), path)
    files.write_json(path / METADATA, source.metadata("saved_model", dtype="uint8", any_size=True,
                                                      normalised_inside=True))


def read_metadata(path: Path) -> dict[str, Any]:
    """The zoo metadata of a SavedModel directory ({} for a SavedModel made elsewhere)."""
    metadata = Path(path) / METADATA
    return json.loads(metadata.read_text()) if metadata.exists() else {}


def load(path: Path) -> Artifact:
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]

    def predict(images: np.ndarray) -> np.ndarray:
        return serving(images=tf.constant(images))["probabilities"].numpy()

    return Artifact(Path(path), "saved_model", read_metadata(path), predict)
