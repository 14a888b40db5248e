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

from zoo.common.errors import ZooError, describe_exception
from zoo.models import layers  # noqa: F401  (registration of LocalResponseNormalization and ChannelZeroPad)

METADATA = "zoo.json"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The zoo metadata inside a `.keras` file ({} for one written elsewhere, or by an older zoo)."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(METADATA)) if METADATA in archive.namelist() else {}


class KerasFileUnreadable(ZooError):
    """A .keras file that is empty, truncated, damaged or unsafe; `reason` says which."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"cannot load {path}: {reason}")


def load_keras_model(path: str | Path, compile: bool = False) -> keras.Model:
    """A model from a .keras file (in Keras's safe mode); with `compile`, its optimizer state too (what
    resuming needs). A file that cannot be loaded is a KerasFileUnreadable saying why."""
    path = Path(path)
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as error:  # a damaged file fails in zipfile, h5py or Keras, each its own way
        raise KerasFileUnreadable(path, why_unreadable(path, error)) from None


def why_unreadable(path: str | Path, error: Exception) -> str:
    """A short reason a `.keras` file did not load: a damaged archive or unsafe content named as such."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return "not a complete .keras archive (empty, truncated or another kind of file)"
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError) as zip_error:
        return f"damaged archive ({zip_error})"
    if broken:
        return f"damaged archive (bad CRC in {broken})"
    if "safe_mode" in " ".join(str(error).split()):
        return ("it holds Python code (a Lambda layer's bytecode), which Keras's safe mode refuses to run; "
                "load only files you trust, and rebuild this one without Python code")
    return describe_exception(error)
