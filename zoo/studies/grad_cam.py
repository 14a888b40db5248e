"""Grad-CAM (Selvaraju et al. 2017): where in the image a convolutional layer found its evidence for a class.

The gradient of the class's score (its logit: the classifier's input times its kernel, before the
softmax) with respect to a layer's feature maps, averaged over each map, weighs the maps; their
weighted sum, through a ReLU, is the class activation map, drawn over the image at its size.
The default layer is the last one whose output is still a spatial map (the last convolutional
block's output), as the paper recommends.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.common.errors import ZooError, unknown
from zoo.studies.figures import pyplot, save_figure

if TYPE_CHECKING:
    import keras


def last_spatial_layer(model: "keras.Model") -> "keras.layers.Layer":
    """The last layer whose output is a [batch, height, width, channels] map."""
    for layer in reversed(model.layers[1:]):
        if len(layer.output.shape) == 4:
            return layer
    raise ZooError(f"--grad-cam: {model.name} has no layer with spatial feature maps")


def find_layer(model: "keras.Model", name: str, blocks: dict[str, "keras.layers.Layer"]) -> "keras.layers.Layer":
    """A layer by its Keras name, or a config block by its name (its last layer)."""
    if name in blocks:
        return blocks[name]
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise ZooError(f"--layer: {unknown('layer', name, [*blocks, *names])}")
    layer = model.get_layer(name)
    if len(layer.output.shape) != 4:
        raise ZooError(f"--layer: expected a layer with spatial feature maps, received {name!r} with output shape "
                       f"{tuple(layer.output.shape)}")
    return layer


def class_activation_map(model: "keras.Model", inputs: np.ndarray, class_index: int,
                         layer: "keras.layers.Layer") -> np.ndarray:
    """The Grad-CAM of `class_index` at `layer` for one normalised input [1, h, w, c]: [h', w'] in [0, 1]."""
    import keras
    import tensorflow as tf

    head = model.layers[-1]
    logits_from_input = isinstance(head, keras.layers.Dense)
    probe = keras.Model(model.input, [layer.output, head.input if logits_from_input else model.output])
    with tf.GradientTape() as tape:
        maps, last = probe(tf.constant(inputs), training=False)  # bfloat16 maps under mixed precision
        if logits_from_input:  # the class's logit: the softmax would flatten the gradient of a confident class
            logits = tf.matmul(tf.cast(last, tf.float32), tf.cast(head.kernel, tf.float32))
            score = logits[:, class_index] + (tf.cast(head.bias[class_index], tf.float32) if head.use_bias else 0.0)
        else:
            score = tf.math.log(tf.cast(last, tf.float32)[:, class_index] + 1e-12)
    gradients = tf.cast(tape.gradient(score, maps), tf.float32)
    maps = tf.cast(maps, tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))[0].numpy()
    return cam / cam.max() if cam.max() > 0 else cam


def plot_grad_cam(image: np.ndarray, cam: np.ndarray, title: str, path: Path) -> Path:
    """The image, and the map (resized to the image) over it."""
    import tensorflow as tf

    plt = pyplot()
    heat = tf.image.resize(cam[..., None], image.shape[:2], method="bilinear").numpy()[..., 0]
    shown = image if image.shape[-1] == 3 else image[..., 0]
    figure, axes = plt.subplots(1, 2, figsize=(6, 3.3))
    for axis in axes:
        axis.imshow(shown, cmap="gray", vmin=0, vmax=255)
        axis.axis("off")
    axes[1].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=9)
    axes[1].set_title("Grad-CAM", fontsize=9)
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path)
