"""Loading `.keras` files written by the zoo: its custom layers and schedule are registered first."""
from __future__ import annotations

from pathlib import Path

import keras

from zoo import layers, schedules  # noqa: F401  (registration of LocalResponseNormalization, ChannelZeroPad, WarmupSchedule)


def load_keras_model(path: str | Path) -> keras.Model:
    """A model (with its optimizer, if it was saved compiled) from a .keras file."""
    return keras.saving.load_model(Path(path))
