"""zoo: the classic convolutional networks as YAML configs, built from one block library with Keras 3.

TensorFlow is imported only when a model is built, so inspecting configs stays fast. Importing
the package first turns TensorFlow's oneDNN kernels on where they win and TensorFlow leaves them
off (zoo.common.cpu), so every entry point and the Python API train at the same speed; and it
registers the zoo's custom Keras objects as soon as Keras is imported, before or after it, so
`keras.saving.load_model` reads any `.keras` file the zoo wrote (safe mode included).
"""
import importlib
from typing import TYPE_CHECKING

from zoo.common.cpu import configure_onednn
from zoo.common.import_hooks import when_imported

configure_onednn()

# The modules whose import registers a custom Keras object that a zoo `.keras` file names: the layers
# Keras has no stock twin for (option A's channel padding, LRN, the fused batch norm a model trains
# with), and the learning-rate schedule inside a file's compiled optimizer.
KERAS_OBJECT_MODULES = ("zoo.models.layers", "zoo.training.schedules")


def _register_keras_objects() -> None:
    for module in KERAS_OBJECT_MODULES:
        importlib.import_module(module)


when_imported("keras", _register_keras_objects)

from zoo.models.builder import build_model  # noqa: E402
from zoo.models.config import load_model_config  # noqa: E402
from zoo.models.create import create_model, list_models  # noqa: E402
from zoo.models.presets import get_preset, list_presets  # noqa: E402

if TYPE_CHECKING:
    from zoo.deploy.classifier import Classifier

__all__ = ["build_model", "create_model", "get_preset", "list_models", "list_presets", "load", "load_model_config"]


def load(source: str, weights: str | None = None) -> "Classifier":
    """A preset, a run directory or an artifact (SavedModel, .keras, .tflite, .onnx), ready for uint8
    images of any size: `load(SOURCE).predict(images)` -> probabilities; `.class_names`, `.top_k`.
    With `weights`, SOURCE is a model config and the weights are what `create_model` takes:
    `load("resnet18", weights="torchvision")` classifies into ImageNet's classes, resizing and cropping
    as torchvision evaluates its weights."""
    from zoo.common.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from zoo.deploy.classifier import load_classifier

    return load_classifier(source, weights)
