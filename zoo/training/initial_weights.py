"""`model.weights` in an experiment: the trained weights a run starts from.

The source (a preset, a run directory, a .keras or .weights.h5 file, a URL#sha256=...) is opened
before the data, so a missing or damaged one stops the run before anything is loaded or trained.
When it carries its normalisation and the experiment sets no `data.mean`/`data.std` of its own
(they are at their defaults, 0 and 1), the weights' are used, and the run says so; a
normalisation the user set that differs is kept, with a warning. A fresh run loads the weights by
layer name into its model (zoo.models.create.transfer_by_name: only a classifier of another class
count starts fresh, a first convolution of other input channels is adapted) and records what it
loaded in the run directory's weights.json, which summary.json repeats. A resumed run takes its
weights from its checkpoint; its source is opened again (to resolve the same experiment), so it
must still be there.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import keras

from zoo.common import files
from zoo.data.sources import dataset_builder
from zoo.experiment import DataConfig, Experiment
from zoo.models.config import ModelConfig
from zoo.models.create import head_layers, open_weights, transfer_by_name

RECORD = "weights.json"
DEFAULT_NORMALIZATION = (DataConfig.mean, DataConfig.std)


@dataclasses.dataclass(frozen=True)
class InitialWeights:
    source: Any  # zoo.models.create's opened weights
    note: str  # where the run's normalisation comes from


def open_initial_weights(experiment: Experiment) -> tuple[Experiment, InitialWeights | None]:
    """The experiment's `model.weights`, opened, and the experiment with the normalisation to train
    with: the weights' (fitted to the data's channels) where it sets none. That experiment is the
    one config.yaml records, so `export` and `visualize` normalise as the run did."""
    model_config = experiment.model_config()
    if not model_config.weights:
        return experiment, None
    source = open_weights(model_config.weights, model_config)
    theirs = source.preprocessing
    ours = (tuple(experiment.data.mean), tuple(experiment.data.std))
    if not theirs:
        return experiment, InitialWeights(source, "the weights carry no normalisation: data.mean/std as set")
    if ours == DEFAULT_NORMALIZATION:
        channels = experiment.data.channels or dataset_builder(experiment.data).info.features["image"].shape[-1]
        mean, std = (_fit(values, channels) for values in (theirs["mean"], theirs["std"]))
        data = dataclasses.replace(experiment.data, mean=mean, std=std)
        return (dataclasses.replace(experiment, data=data),
                InitialWeights(source, f"data.mean/std are the weights' ({list(mean)}, {list(std)}), as the "
                                       "experiment sets none"))
    if ours != (tuple(theirs["mean"]), tuple(theirs["std"])):
        print(f"warning: data.mean/std {list(ours[0])}, {list(ours[1])} differ from the normalisation the weights "
              f"were trained with ({list(theirs['mean'])}, {list(theirs['std'])}); the experiment's are used",
              file=sys.stderr)
    return experiment, InitialWeights(source, "data.mean/std as set by the experiment")


def _fit(values: list[float], channels: int) -> tuple[float, ...]:
    """Per-channel values for `channels` channels: as they are, or averaged to one (3 -> 1 channel)."""
    return tuple(values) if len(values) in (1, channels) else (float(sum(values) / len(values)),)


def load_into(model: keras.Model, weights: InitialWeights, model_config: ModelConfig, run_dir: Path,
              class_names: list[str]) -> dict:
    """Loads the weights into a freshly built `model` for data of `class_names`; prints and records
    (weights.json) what was loaded."""
    report = transfer_by_name(weights.source, model, head_layers(model_config), class_names)
    print(report.describe())
    record = {"source": model_config.weights, "opened": report.source, "sha256": report.sha256,
              "loaded": report.loaded, "fresh": report.fresh, "adapted": report.adapted,
              "normalization": weights.note}
    files.write_json(run_dir / RECORD, record)
    return record


def weights_record(run_dir: Path) -> dict | None:
    """What the run loaded when it started (weights.json), or None for a run from random weights."""
    path = run_dir / RECORD
    return json.loads(path.read_text()) if path.is_file() else None
