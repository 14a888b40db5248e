"""Test-time augmentation: a prediction averaged over several views of each image.

`flip` averages the class probabilities of each image and of its mirror image, the cheapest view
that CIFAR-style training (random horizontal flips) makes the model expect. It is always reported
beside the single-view figure, never instead of it: the papers' accuracies are single-view.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from zoo.common.errors import ZooError

TTA_VIEWS = ("flip",)


def check_tta(name: str | None, key: str = "--tta") -> None:
    if name is not None and name not in TTA_VIEWS:
        raise ZooError(f"{key}: expected one of {', '.join(TTA_VIEWS)}, received {name!r}")


def predict_with_tta(predict: Callable[[np.ndarray], np.ndarray], images, name: str) -> np.ndarray:
    """The mean of `predict`'s probabilities over the views `name` makes of a batch of NHWC `images`."""
    check_tta(name)
    views = [images, np.ascontiguousarray(np.asarray(images)[:, :, ::-1])]  # flip: the width axis reversed
    return np.mean([np.asarray(predict(view), dtype=np.float64) for view in views], axis=0)
