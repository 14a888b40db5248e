"""SavedModel export: a `serving_default` that takes uint8 images and returns probabilities and the class.

The signature takes `images`, uint8 [batch, height, width, channels] of any batch size and any
size (resized inside, with the training normalisation), and returns `probabilities` (float32
[batch, classes]) and `class` (int64 [batch]). TensorFlow refuses another dtype or rank. A
metadata file, `assets.extra/zoo.json`, records the input size, normalisation and class names.
Before an export counts, it is reloaded with `tf.saved_model.load` and checked against the
Keras model on real images; it is written beside its final place and swapped in atomically.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.data.preprocess import Preprocessing

METADATA = Path("assets.extra") / "zoo.json"


def export_saved_model(model: keras.Model, preprocessing: Preprocessing, class_names: list[str], path: Path) -> None:
    """Writes `model` with its preprocessing as a SavedModel at `path` (which must not exist)."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        probabilities = tf.cast(model(preprocessing(images), training=False), tf.float32)
        return {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    spec = tf.TensorSpec([None, None, None, preprocessing.channels], tf.uint8, name="images")
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    archive.write_out(str(path), verbose=False)
    files.write_json(path / METADATA, {**preprocessing.to_json(), "class_names": class_names,
                                       "model": model.name})


def read_metadata(path: Path) -> dict[str, Any]:
    """The zoo metadata of a SavedModel directory ({} for a SavedModel made elsewhere)."""
    metadata = Path(path) / METADATA
    return json.loads(metadata.read_text()) if metadata.exists() else {}


def verify_saved_model(path: Path, model: keras.Model, preprocessing: Preprocessing, images: np.ndarray) -> float:
    """Reloads the SavedModel and compares it with the Keras model on `images`; returns the max difference."""
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    served = serving(images=tf.constant(images))
    expected = np.asarray(model(preprocessing(tf.constant(images)), training=False), dtype=np.float32)
    difference = float(np.max(np.abs(served["probabilities"].numpy() - expected)))
    tolerance = 1e-5 if keras.mixed_precision.global_policy().compute_dtype == "float32" else 1e-2
    if difference > tolerance or not np.array_equal(served["class"].numpy(), expected.argmax(-1)):
        raise ZooError(f"the SavedModel at {path} disagrees with the Keras model (max difference {difference:.2e}, "
                       f"tolerance {tolerance:.0e}); it was not installed")
    return difference


def export_run(run_dir: Path, model: keras.Model, data) -> Path:
    """Exports, verifies and atomically installs `run_dir/saved_model`; returns its path."""
    final, tmp, old = run_dir / "saved_model", run_dir / ".saved_model.tmp", run_dir / ".saved_model.old"
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    export_saved_model(model, data.preprocessing, data.class_names, tmp)
    images = np.concatenate([batch.numpy() for batch in data.eval_images.batch(16).take(2)])
    difference = verify_saved_model(tmp, model, data.preprocessing, images)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    print(f"SavedModel verified on {len(images)} evaluation images (max probability difference {difference:.1e})")
    return final


def reexport_run(run_dir: str | Path) -> Path:
    """Exports a finished (or checkpointed) run again from its model.keras and config.yaml."""
    from zoo.common.yamlfiles import load_yaml
    from zoo.data.pipeline import load_data
    from zoo.experiment import experiment_from_mapping
    from zoo.models.saving import load_keras_model

    run_dir = Path(run_dir).resolve()
    # the trained model, else the newest per-epoch checkpoint (checkpoints/epoch-NNNN.keras)
    candidates = [run_dir / "model.keras", *sorted((run_dir / "checkpoints").glob("epoch-*.keras"), reverse=True)]
    model_path = next((path for path in candidates if path.exists()), None)
    if model_path is None or not (run_dir / "config.yaml").exists():
        raise ZooError(f"expected a run directory with model.keras (or checkpoints/) and config.yaml, "
                       f"received {run_dir}")
    experiment = experiment_from_mapping(load_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"), run_dir)
    model = load_keras_model(model_path)
    train = experiment.train
    data = load_data(experiment.data, model_input_size=model.input_shape[1:3], batch_size=train.batch_size,
                     train=False)
    return export_run(run_dir, model, data)
