"""Weights from keras.applications: transfer into a YAML-built twin, and `pretrained: imagenet`.

A model config names its twin with `keras_application: ResNet50`. The twins are built from the
same operations in the same order, so their weighted layers pair up one to one; every weight's
shape is checked before anything is copied.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.common.errors import ConfigError, ZooError
from zoo.models.config import ModelConfig

if TYPE_CHECKING:
    import keras


def keras_application(name: str):
    """The keras.applications constructor called `name` (for example 'ResNet50')."""
    import keras

    constructor = getattr(keras.applications, name, None)
    if not callable(constructor):
        raise ConfigError(f"keras.applications has no model {name!r}", key="keras_application")
    return constructor


def transfer_weights(src: "keras.Model", dst: "keras.Model", *, include_head: bool = True) -> int:
    """Copies every weight of `src` into `dst`, layer by layer in order; returns the tensors copied.

    With `include_head=False`, `src` is a headless model (`include_top=False`) and `dst`'s last
    weighted layer (its classifier) keeps its own initialisation.
    """
    src_layers = [layer for layer in src.layers if layer.weights]
    dst_layers = [layer for layer in dst.layers if layer.weights]
    expected = len(src_layers) + (0 if include_head else 1)
    if len(dst_layers) != expected:
        raise ZooError(f"cannot transfer weights from {src.name} to {dst.name}: expected {expected} layers with "
                       f"weights in {dst.name}, received {len(dst_layers)}")
    pairs = list(zip(src_layers, dst_layers))
    for source, target in pairs:  # check everything before changing anything
        src_shapes = [tuple(w.shape) for w in source.weights]
        dst_shapes = [tuple(w.shape) for w in target.weights]
        if src_shapes != dst_shapes:
            raise ZooError(f"cannot transfer weights from {src.name} to {dst.name}: layer {target.name} has shapes "
                           f"{dst_shapes}, its counterpart {source.name} has {src_shapes}")
    for source, target in pairs:
        # Variable to variable, inside TensorFlow: get_weights/set_weights went through NumPy copies, which
        # took 9.9 s of VGG-16's 10 (its 400 MB fc1 kernel) on the Intel Xeon AMX, against 0.03 s this way.
        for source_weight, target_weight in zip(source.weights, target.weights, strict=True):
            target_weight.assign(source_weight)
    return sum(len(source.weights) for source, _ in pairs)


def load_pretrained(model: "keras.Model", config: ModelConfig) -> None:
    """Loads keras.applications' ImageNet weights into `model` (all but the classifier if its classes differ)."""
    constructor = keras_application(config.keras_application)
    include_top = config.num_classes == 1000 and tuple(config.input_shape) == (224, 224, 3)
    try:
        source = constructor(weights="imagenet", include_top=include_top,
                             input_shape=None if include_top else tuple(config.input_shape))
    except Exception as error:  # the download surfaces as URLError, HTTPError, OSError or a wrapped Exception
        raise ZooError(
            f"cannot load ImageNet weights for {config.keras_application} ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0][:120]}): keras.applications downloads them to ~/.keras/models on first "
            "use; without network access copy the .h5 file there, or remove 'pretrained' from the config"
        ) from None
    transfer_weights(source, model, include_head=include_top)
