"""`zoo_patterns`: a small synthetic image set of what convolutional filters detect, made offline.

Ten classes of 32x32 grayscale images: lines (horizontal, vertical, two diagonals), crosses (+
and x), edges (horizontal, vertical) and outlines (square, circle), each at a random position,
size, thickness and contrast, with Gaussian noise. Generation is deterministic (fixed seeds per
split) and needs no network, so `make train` works anywhere. Registered with TFDS as a normal
dataset builder: `tfds.load("zoo_patterns")` prepares it on first use.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import tensorflow_datasets as tfds

SIZE = 32
SPLITS = {"train": (0, 6000), "test": (1, 1200)}  # split -> (seed, examples)

Grid = tuple[np.ndarray, np.ndarray]
# Each drawer returns a mask in [0, 1] of the pattern, given the pixel grid and a random generator.
DRAWERS: dict[str, Callable[[Grid, np.random.Generator], np.ndarray]] = {}


def drawer(name: str):
    def register(function):
        DRAWERS[name] = function
        return function
    return register


def _band(distance: np.ndarray, thickness: float) -> np.ndarray:
    """A soft line: 1 within thickness/2 of the centre line, fading over one pixel."""
    return np.clip(thickness / 2 + 0.5 - np.abs(distance), 0, 1)


def _segment(grid: Grid, rng: np.random.Generator, angle: float) -> np.ndarray:
    """A line segment at `angle` through a random centre, of random length and thickness."""
    y, x = grid
    cy, cx = rng.uniform(8, SIZE - 8, size=2)
    half_length = rng.uniform(7, 14)
    thickness = rng.uniform(1, 3)
    dy, dx = np.sin(angle), np.cos(angle)
    along = (x - cx) * dx + (y - cy) * dy
    across = -(x - cx) * dy + (y - cy) * dx
    return _band(across, thickness) * np.clip(half_length + 0.5 - np.abs(along), 0, 1)


# Lines at four angles; registered in class order.
for _name, _angle in {"horizontal_line": 0.0, "vertical_line": np.pi / 2,
                      "diagonal_down": np.pi / 4, "diagonal_up": -np.pi / 4}.items():
    DRAWERS[_name] = functools.partial(_segment, angle=_angle)


def _cross(grid, rng, angle):
    state = rng.bit_generator.state
    first = _segment(grid, rng, angle)
    rng.bit_generator.state = state  # the same centre, length and thickness for both strokes
    return np.maximum(first, _segment(grid, rng, angle + np.pi / 2))


for _name, _angle in {"cross": 0.0, "x_cross": np.pi / 4}.items():
    DRAWERS[_name] = functools.partial(_cross, angle=_angle)


@drawer("horizontal_edge")
def _horizontal_edge(grid, rng):
    y, _ = grid
    return np.clip(y - rng.uniform(6, SIZE - 6) + 0.5, 0, 1)  # a step at a random row; draw() picks its sign


@drawer("vertical_edge")
def _vertical_edge(grid, rng):
    y, x = grid
    return _horizontal_edge((x, y), rng)


@drawer("square")
def _square(grid, rng):
    y, x = grid
    cy, cx = rng.uniform(10, SIZE - 10, size=2)
    half, thickness = rng.uniform(4, 9), rng.uniform(1, 2.5)
    chebyshev = np.maximum(np.abs(y - cy), np.abs(x - cx))
    return _band(chebyshev - half, thickness)


@drawer("circle")
def _circle(grid, rng):
    y, x = grid
    cy, cx = rng.uniform(10, SIZE - 10, size=2)
    radius, thickness = rng.uniform(4, 9), rng.uniform(1, 2.5)
    return _band(np.hypot(y - cy, x - cx) - radius, thickness)


CLASSES = list(DRAWERS)


def draw(label: int, rng: np.random.Generator) -> np.ndarray:
    """One 32x32x1 uint8 image of class `label`: the pattern at a random contrast, plus noise."""
    grid = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    mask = DRAWERS[CLASSES[label]]((grid[0], grid[1]), rng)
    # Foreground and background at least 60 grey levels apart, either brighter or darker.
    background = rng.uniform(0, 255)
    darker, brighter = max(background - 60, 0), max(195 - background, 0)
    u = rng.uniform(0, darker + brighter)
    foreground = u if u < darker else background + 60 + (u - darker)
    image = background + (foreground - background) * mask + rng.normal(0, rng.uniform(0, 20), mask.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)[..., None]


class ZooPatterns(tfds.core.GeneratorBasedBuilder):
    """Synthetic lines, edges, crosses and outlines (see the module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Ten classes, 6000 train and 1200 test images."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(SIZE, SIZE, 1)),
                "label": tfds.features.ClassLabel(names=CLASSES),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(seed, count) for split, (seed, count) in SPLITS.items()}

    def _generate_examples(self, seed: int, count: int):
        rng = np.random.default_rng(seed)
        for index in range(count):
            label = index % len(CLASSES)
            yield index, {"image": draw(label, rng), "label": label}
