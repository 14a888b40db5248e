"""Loading `.keras` files written by the zoo: its custom layers are registered first.

For inference the model alone is loaded (`compile=False`). Resuming training needs the optimizer
too, and with it the learning-rate schedule, which belongs to the trainer: zoo.training
registers it and loads checkpoints with `compile=True`.
"""
from __future__ import annotations

from pathlib import Path

import keras

from zoo.models import layers  # noqa: F401  (registration of LocalResponseNormalization and ChannelZeroPad)


def load_keras_model(path: str | Path, compile: bool = False) -> keras.Model:
    """A model from a .keras file; with `compile`, its optimizer state too (what resuming needs)."""
    return keras.saving.load_model(Path(path), compile=compile)
