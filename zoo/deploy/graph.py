"""The serving graph every format exports: uint8 images in, the trained model's probabilities out.

`serving_function` wraps the model with its preprocessing and returns `probabilities` (float32
[batch, classes]) and `class` (int64 [batch]) for uint8 images [batch, height, width, channels]:
of any size when the format can resize (SavedModel), else of the training size.

Keras runs a grouped convolution (AlexNet's conv2/4/5) on TensorFlow inside a nested
XLA-compiled function, which tf2onnx cannot convert (onnx/tensorflow-onnx#2099, #2347). The
serving graph therefore uses `inference_model`: the same model with each grouped convolution
computed one group at a time by ordinary convolutions on the same weight variables (shared, not
copied), which every converter accepts. The trained model and its `.keras` file are unchanged.

LiteRT and ONNX have no bfloat16 kernels, so those formats export `in_float32(model)`: a copy of a
mixed-precision model computing in float32, with its weights (float32 variables under either policy).
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from zoo.data.preprocess import Preprocessing


def _grouped(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Conv2D) and getattr(layer, "groups", 1) > 1


class SplitGroupedConv2D(keras.layers.Layer):
    """A grouped Conv2D computed group by group with ungrouped convolutions, on that Conv2D's own weights."""

    def __init__(self, conv: keras.layers.Conv2D):
        super().__init__(name=f"{conv.name}_by_group", dtype=conv.dtype_policy)
        self.conv = conv

    def call(self, inputs):
        conv = self.conv
        axis = -1 if conv.data_format == "channels_last" else 1
        # A grouped kernel is [kh, kw, channels / groups, filters]; group g owns the g-th slice of
        # the input channels and the g-th contiguous slice of the filters.
        outputs = [keras.ops.conv(x, kernel, strides=conv.strides, padding=conv.padding,
                                  data_format=conv.data_format, dilation_rate=conv.dilation_rate)
                   for x, kernel in zip(keras.ops.split(inputs, conv.groups, axis=axis),
                                        keras.ops.split(conv.kernel, conv.groups, axis=-1))]
        outputs = keras.ops.concatenate(outputs, axis=axis)
        if conv.use_bias:
            shape = (1, -1, 1, 1) if axis == 1 else (-1,)
            outputs = outputs + keras.ops.reshape(conv.bias, shape)
        return conv.activation(outputs) if conv.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


def in_float32(model: keras.Model) -> keras.Model:
    """`model` itself if it computes in float32, else a float32 copy of it with the same weights."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model
    copy = keras.models.clone_model(
        model, clone_function=lambda layer: layer.__class__.from_config({**layer.get_config(), "dtype": "float32"}))
    # Variable to variable, inside TensorFlow: no NumPy copies (see zoo.models.pretrained.transfer_weights).
    for copied, weight in zip(copy.weights, model.weights, strict=True):
        copied.assign(weight)
    return copy


def inference_model(model: keras.Model) -> keras.Model:
    """`model` itself, or, if it has grouped convolutions, a twin sharing its layers with those split by group."""
    if not any(_grouped(layer) for layer in model.layers):
        return model
    return keras.models.clone_model(model, clone_function=lambda layer: SplitGroupedConv2D(layer)
                                    if _grouped(layer) else layer)


def serving_function(model: keras.Model, preprocessing: Preprocessing, *,
                     any_size: bool) -> tuple[Callable[[tf.Tensor], dict[str, tf.Tensor]], tf.TensorSpec]:
    """The serving function and its input signature: uint8 `images` -> `probabilities`, `class`.

    With `any_size`, images of any size are resized inside (tf.image.resize with antialiasing,
    which only TensorFlow runs); without it they must already be `preprocessing.image_size`.
    """
    graph = inference_model(model)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = preprocessing(images) if any_size else preprocessing.normalize(images)
        probabilities = tf.cast(graph(inputs, training=False), tf.float32)
        return {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    size = [None, None] if any_size else list(preprocessing.image_size)
    return serve, tf.TensorSpec([None, *size, preprocessing.channels], tf.uint8, name="images")
