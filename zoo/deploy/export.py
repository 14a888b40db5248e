"""Exporting a trained model to the formats a run asks for, each verified before it is installed.

Each artifact is written beside its final place (zoo.common.files.staging_path), loaded in its
own runtime and checked against the Keras model on evaluation images (zoo.deploy.verify), and
only then moved into place; a failed or refused export leaves what was there before untouched.
`export_run` is what the trainer calls at the end of a run; `reexport_run` (python -m zoo
export) does the same later, from the run's model.keras (or checkpoint) and config.yaml.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.data.pipeline import Data
from zoo.deploy.artifact import Source
from zoo.deploy.formats import check_installed, get
from zoo.deploy.graph import in_float32
from zoo.deploy.verify import Differences, verify
from zoo.experiment import Experiment

VERIFICATION_IMAGES = 32


def export_artifact(name: str, source: Source, final: Path, images: np.ndarray) -> Differences:
    """Writes `source` as format `name` at `final`, verified on `images`; returns the probability differences."""
    format = get(name)
    check_installed([name])
    staged = files.staging_path(final)
    files.remove(staged)  # left by an export that was killed
    if format.float32:
        source = dataclasses.replace(source, model=in_float32(source.model))
    try:
        format.write(source, staged)
        differences = verify(format.load(staged), source.model, source.preprocessing, images, format.tolerance,
                             format.bounded)
        files.install(staged, final)
    finally:
        files.remove(staged)
    print(f"{name}: {final} ({files.disk_size(final) / 1e6:,.2f} MB) verified against the Keras model on "
          f"{len(images)} evaluation images: max probability difference {differences.max:.1e}, mean per image "
          f"{differences.mean:.1e} (tolerance on the {format.bounded} {format.tolerance:.0e})")
    return differences


def first_images(dataset: tf.data.Dataset, count: int) -> np.ndarray:
    """The first `count` elements of an unbatched dataset of uint8 images, as one array."""
    return np.stack(list(dataset.take(count).as_numpy_iterator()))


def source_of(model: keras.Model, data: Data, experiment: Experiment) -> Source:
    """What every artifact of a run carries, with training images for int8 calibration (read only if needed)."""
    count = experiment.export.calibration_images

    def calibration_images() -> np.ndarray:
        # File order may group classes: a sample of a few times as many mixes them, and numpy's seeded
        # choice (unlike tf.data's, which follows the global seed) is the same at training and re-export.
        pool = first_images(data.train_images(), 4 * count)
        return pool[np.random.default_rng(0).permutation(len(pool))[:count]]

    return Source(model, data.preprocessing, data.class_names, experiment.to_dict()["data"], calibration_images)


def export_run(run_dir: Path, model: keras.Model, data: Data, experiment: Experiment,
               formats: Sequence[str] | None = None) -> dict[str, Path]:
    """Exports `model` in `formats` (default: the experiment's `export:`) into `run_dir`; returns their paths."""
    formats = list(dict.fromkeys(experiment.export.formats() if formats is None else formats))
    check_installed(formats)  # all before any, so a missing package stops the export before it starts
    source = source_of(model, data, experiment)
    images = first_images(data.eval_images, VERIFICATION_IMAGES)
    written = {}
    for name in formats:
        written[name] = run_dir / get(name).filename
        export_artifact(name, source, written[name], images)
    return written


def reexport_run(run_dir: str | Path, formats: Sequence[str] | None = None) -> dict[str, Path]:
    """Exports a finished (or checkpointed) run again from its model.keras and config.yaml."""
    from zoo.common.yamlfiles import load_yaml
    from zoo.data.pipeline import load_data
    from zoo.experiment import experiment_from_mapping
    from zoo.models.saving import load_keras_model

    run_dir = Path(run_dir).resolve()
    for name in formats or ():
        get(name)
    # the trained model, else the newest per-epoch checkpoint (checkpoints/epoch-NNNN.keras)
    candidates = [run_dir / "model.keras", *sorted((run_dir / "checkpoints").glob("epoch-*.keras"), reverse=True)]
    model_path = next((path for path in candidates if path.exists()), None)
    if model_path is None or not (run_dir / "config.yaml").exists():
        raise ZooError(f"expected a run directory with model.keras (or checkpoints/) and config.yaml, "
                       f"received {run_dir}")
    experiment = experiment_from_mapping(load_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"), run_dir)
    formats = formats or experiment.export.formats()
    if not formats:
        raise ZooError("expected --format, as the run's export: section switches every format off, received none")
    check_installed(formats)
    model = load_keras_model(model_path)
    data = load_data(experiment.data, model_input_size=model.input_shape[1:3], batch_size=experiment.train.batch_size,
                     train=False)
    return export_run(run_dir, model, data, experiment, formats)
