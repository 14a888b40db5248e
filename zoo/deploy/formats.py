"""The export formats by name, their place in a run directory, and recognising an artifact by its path.

| name          | in a run directory  | runs in       | input                                      |
|---------------|---------------------|---------------|--------------------------------------------|
| `saved_model` | `saved_model/`      | TensorFlow    | uint8 images of any size                   |
| `keras`       | `model.keras`       | Keras         | float32, normalised outside                |
| `litert`      | `model.tflite`      | LiteRT        | uint8 images at the training size          |
| `litert_int8` | `model_int8.tflite` | LiteRT        | the same; int8 weights and activations     |
| `onnx`        | `model.onnx`        | onnxruntime   | uint8 images at the training size          |

The names are the boolean keys of the experiment's `export:` section (zoo.experiment.ExportConfig).
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Callable, Iterable, Literal

from zoo.common.errors import ZooError, describe_exception
from zoo.deploy import keras_file, litert, onnx_file, saved_model
from zoo.deploy.artifact import Artifact, Source
from zoo.deploy.runtime import require
from zoo.experiment import check_export_format
from zoo.models.saving import why_unreadable


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    filename: str  # its name in a run directory
    packages: tuple[str, ...]  # what exporting needs beyond TensorFlow: the `export` extra
    write: Callable[[Source, Path], None]
    load: Callable[[Path], Artifact]
    # the probability difference to the Keras model that verification accepts (float32 models), and
    # which one it bounds (zoo.deploy.verify): the largest, or the mean of each image's largest
    tolerance: float
    bounded: Literal["max", "mean"] = "max"
    # its runtime has no bfloat16 or float16 kernels: a mixed-precision model is exported (and verified)
    # as its float32 copy (zoo.deploy.graph.in_float32)
    float32: bool = False


FORMATS = {format.name: format for format in (
    Format("saved_model", "saved_model", (), saved_model.write, saved_model.load, 1e-5),
    Format("keras", "model.keras", (), keras_file.write, keras_file.load, 1e-5),
    Format("litert", "model.tflite", ("ai_edge_litert",), litert.write, litert.load, 1e-4, float32=True),
    # Measured on 2,000 test images, in batches of 32 as verification takes them: the worst batch's mean
    # was 0.005 (LeNet-5, MNIST) and 0.023 (ResNet-20, CIFAR-10), where single images moved by up to 0.15.
    Format("litert_int8", "model_int8.tflite", ("ai_edge_litert",), functools.partial(litert.write, int8=True),
           litert.load, 0.05, "mean", float32=True),
    Format("onnx", "model.onnx", ("onnx", "tf2onnx", "onnxruntime"), onnx_file.write, onnx_file.load, 1e-4,
           float32=True),
)}
SUFFIXES = {".keras": "keras", ".tflite": "litert", ".onnx": "onnx"}  # a .tflite's metadata says if it is int8


def get(name: str) -> Format:
    return FORMATS[check_export_format(name)]


def check_installed(names: Iterable[str]) -> None:
    """A ZooError naming the `export` extra if a package the formats `names` need is missing."""
    for name in names:
        for package in get(name).packages:
            require(package, f"the {name} format")


def format_of(path: Path) -> str:
    """The format of the artifact at `path`, from its shape on disk."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return "saved_model"
    if path.is_file() and path.suffix in SUFFIXES:
        return SUFFIXES[path.suffix]
    raise ZooError(f"expected a run directory, a SavedModel directory or a .keras, .tflite or .onnx file, "
                   f"received {path}" + ("" if path.exists() else " (it does not exist)"))


class ArtifactUnreadable(ZooError):
    """An artifact that is empty, truncated, damaged, of another format, or unsafe to load."""


def open_artifact(path: str | Path) -> Artifact:
    """The artifact at `path`, loaded in its own runtime; one that cannot be is one line naming it and why.

    Unsafe content is refused, never run: `.keras` files load in Keras's safe mode, which will not
    deserialise Python code (a Lambda layer's bytecode).
    """
    path = Path(path)
    format = format_of(path)
    try:
        return FORMATS[format].load(path)
    except ZooError:
        raise
    except Exception as error:  # each runtime fails its own way: zipfile, h5py, Keras, TensorFlow, LiteRT
        reason = why_unreadable(path, error) if format == "keras" else describe_exception(error)
        raise ArtifactUnreadable(f"cannot load {path} as a {format} artifact: {reason}") from None


def run_artifacts(run_dir: Path, names: Iterable[str] | None = None) -> list[Path]:
    """The artifacts of a run directory, in format order: those named (each must exist), or all there are."""
    if names is None:
        return [run_dir / f.filename for f in FORMATS.values() if (run_dir / f.filename).exists()]
    paths = []
    for name in dict.fromkeys(names):
        path = run_dir / get(name).filename
        if not path.exists():
            raise ZooError(f"--format {name}: expected {path}, which the run has not exported "
                           f"(python -m zoo export {run_dir} --format {name} writes it)")
        paths.append(path)
    return paths
