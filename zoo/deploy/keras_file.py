"""The `.keras` format: the Keras model itself, for more training or for Keras code.

Its input is the model's own: float32 [batch, height, width, channels] at the training size,
normalised outside as (pixels / 255 - mean) / std (the metadata records mean and std). The zoo
metadata is an extra `zoo.json` entry in the file's zip archive, which Keras ignores on loading.
Loaded as an artifact (evaluate.py, `zoo.load`), it runs through the same compiled serving graph as the
SavedModel (zoo.deploy.graph.compiled_predict), not layer by layer from Python.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from zoo.data.preprocess import Preprocessing
from zoo.deploy.artifact import Artifact, Source, require_metadata
from zoo.deploy.graph import compiled_predict
from zoo.models.saving import METADATA, load_keras_model, read_metadata


def write(source: Source, path: Path) -> None:
    """Writes `source.model` as a `.keras` file at `path`, with the zoo metadata inside."""
    source.model.save(path)
    metadata = source.metadata("keras", dtype="float32", any_size=False, normalised_inside=False)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(METADATA, json.dumps(metadata, indent=2))


def load(path: Path) -> Artifact:
    metadata = require_metadata(read_metadata(path), path, "keras")
    predict = compiled_predict(load_keras_model(path), Preprocessing.from_json(metadata))
    return Artifact(Path(path), "keras", metadata, predict)
