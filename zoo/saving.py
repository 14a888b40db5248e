"""Loading `.keras` files written by the zoo: its custom layers and schedule are registered first."""
from __future__ import annotations

from pathlib import Path

import keras

from zoo import layers, schedules  # noqa: F401  (registration of LocalResponseNormalization, ChannelZeroPad, WarmupSchedule)


def load_keras_model(path: str | Path, compile: bool = True) -> keras.Model:
    """A model from a .keras file; with `compile`, its optimizer state too (what resuming needs)."""
    return keras.saving.load_model(Path(path), compile=compile)
