"""Loading `.keras` files written by the zoo (its custom layers registered first), and the zoo
metadata inside them: an extra `zoo.json` entry in the zip archive, which Keras ignores.

For inference the model alone is loaded (`compile=False`). Resuming training needs the optimizer
too, and with it the learning-rate schedule, which belongs to the trainer: zoo.training
registers it and loads checkpoints with `compile=True`.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import keras

from zoo.models import layers  # noqa: F401  (registration of LocalResponseNormalization and ChannelZeroPad)

METADATA = "zoo.json"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The zoo metadata inside a `.keras` file ({} for one written elsewhere, or by an older zoo)."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(METADATA)) if METADATA in archive.namelist() else {}


def load_keras_model(path: str | Path, compile: bool = False) -> keras.Model:
    """A model from a .keras file; with `compile`, its optimizer state too (what resuming needs)."""
    return keras.saving.load_model(Path(path), compile=compile)
