"""What an export starts from (`Source`), what every artifact carries (its metadata), and an
artifact loaded in its own runtime (`Artifact`), shared by every format.

The metadata names the format, the model, the data it was trained on (the run's whole `data`
config: dataset name or folder, training and evaluation splits), its preprocessing (input size,
channels, mean, std), its class names and the input the artifact takes, so an artifact alone is
enough for evaluate.py. Each format stores it inside the artifact (zoo.deploy.formats).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from zoo.common.errors import ZooError
from zoo.data.preprocess import Preprocessing


@dataclasses.dataclass(frozen=True)
class Source:
    """A trained Keras model and what its artifacts carry."""

    model: keras.Model
    preprocessing: Preprocessing
    class_names: list[str]
    data: dict[str, Any] | None = None  # the run's data config, as a mapping
    # uint8 training images at the input size, for int8 calibration; a function, as only int8 needs them
    calibration_images: Callable[[], np.ndarray] | None = None

    def metadata(self, format: str, *, dtype: str, any_size: bool, normalised_inside: bool) -> dict[str, Any]:
        """The metadata of this model exported as `format`, whose input is described by the keywords."""
        height, width = self.preprocessing.image_size
        size = [None, None] if any_size else [height, width]
        if normalised_inside:
            expects = "pixel values 0-255; " + ("resized and normalised inside" if any_size else
                                                f"resize to {height}x{width} first; normalised inside")
        else:
            expects = f"(pixels / 255 - mean) / std at {height}x{width}"
        return {"format": format, "model": self.model.name, **self.preprocessing.to_json(),
                "class_names": list(self.class_names), "data": self.data,
                "input": {"name": "images", "dtype": dtype, "shape": [None, *size, self.preprocessing.channels],
                          "expects": expects}}


@dataclasses.dataclass(frozen=True)
class Artifact:
    """An exported model loaded in its runtime.

    `predict` maps a uint8 batch at `preprocessing`'s size to probabilities.
    """

    path: Path
    format: str
    metadata: dict[str, Any]
    predict: Callable[[np.ndarray], np.ndarray]

    @property
    def preprocessing(self) -> Preprocessing | None:
        return Preprocessing.from_json(self.metadata) if "image_size" in self.metadata else None


def require_metadata(metadata: dict[str, Any] | None, path: Path, format: str) -> dict[str, Any]:
    """The zoo metadata read from an artifact, or a ZooError for an artifact made elsewhere."""
    if not metadata:
        raise ZooError(f"expected a {format} artifact exported by the zoo (with its metadata: input size, "
                       f"normalisation, class names), received {path}, which has none "
                       f"(python -m zoo export RUN_DIR --format {format} writes one)")
    return metadata
