"""The serving graph every format exports: uint8 images in, the trained model's probabilities out.

`serving_function` wraps the model with its preprocessing and returns `probabilities` (float32
[batch, classes]) and `class` (int64 [batch]) for uint8 images [batch, height, width, channels]:
of any size when the format can resize (SavedModel), else of the training size.

Keras runs a grouped convolution (AlexNet's conv2/4/5) on TensorFlow inside a nested
XLA-compiled function, which tf2onnx cannot convert (onnx/tensorflow-onnx#2099, #2347). The
serving graph therefore uses `inference_model`: the same model with each grouped convolution
computed one group at a time by ordinary convolutions on the same weight variables (shared, not
copied), which every converter accepts. The trained model and its `.keras` file are unchanged.

Batch norm after a convolution is folded into it (`batch_norm_folded`): at inference it is a fixed
per-channel scale and shift, so the convolution's kernel takes the scale and its bias the shift
(what ONNX Runtime and the LiteRT converter do for themselves). TensorFlow does not fold it: Keras's
batch norm reads its statistics from variables, which grappler cannot treat as constants, so a
SavedModel ran each one as five separate ops, and its convolutions could not be fused with the
bias, residual add and ReLU that follow. Folded, ResNet-20's SavedModel serves 1.5x more images a
second at batch 64 (Intel Xeon AMX, benchmarks/README.md). The trained model and its `.keras` file keep their
batch norm layers.

LiteRT and ONNX have no bfloat16 kernels, so those formats export `in_float32(model)`: a copy of a
mixed-precision model computing in float32, with its weights (float32 variables under either policy).
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
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


def _producer(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The layer whose output is `layer`'s one input (None for several inputs)."""
    inputs = keras.tree.flatten(layer.input)
    return inputs[0]._keras_history.operation if len(inputs) == 1 else None


def _foldable_pairs(model: keras.Model) -> list[tuple[keras.layers.Conv2D, keras.layers.BatchNormalization]]:
    """(convolution, batch norm) pairs where the batch norm alone reads the convolution's output, on channels."""
    consumers: dict[str, int] = {}
    for layer in model.layers:
        for tensor in keras.tree.flatten(layer.input) if not isinstance(layer, keras.layers.InputLayer) else ():
            name = tensor._keras_history.operation.name
            consumers[name] = consumers.get(name, 0) + 1
    for output in keras.tree.flatten(model.outputs):
        name = output._keras_history.operation.name
        consumers[name] = consumers.get(name, 0) + 1
    pairs = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or layer.axis not in (-1, 3):
            continue
        conv = _producer(layer)
        if (type(conv) is keras.layers.Conv2D and conv.data_format == "channels_last" and consumers[conv.name] == 1
                and conv.activation is keras.activations.linear):  # an activation between them: no fold
            pairs.append((conv, layer))
    return pairs


def _folded_conv(conv: keras.layers.Conv2D, norm: keras.layers.BatchNormalization) -> keras.layers.Conv2D:
    """A new convolution computing `norm(conv(x))` at inference:
    y = (conv(x) - mean) * gamma / sqrt(var + eps) + beta."""
    def value(variable) -> np.ndarray:  # in float64, so the fold adds no rounding of its own
        return np.asarray(keras.ops.convert_to_numpy(variable), np.float64)

    folded = keras.layers.Conv2D.from_config({**conv.get_config(), "use_bias": True})
    folded.build(conv.input.shape)
    scale = (value(norm.gamma) if norm.scale else 1.0) / np.sqrt(value(norm.moving_variance) + norm.epsilon)
    shift = value(norm.beta) if norm.center else 0.0
    folded.kernel.assign(value(conv.kernel) * scale)
    folded.bias.assign(((value(conv.bias) if conv.use_bias else 0.0) - value(norm.moving_mean)) * scale + shift)
    return folded


def batch_norm_folded(model: keras.Model) -> keras.Model:
    """`model` itself, or a twin in which every batch norm that alone follows a convolution is folded into it
    (a new convolution with a bias); every other layer is shared with `model`, not copied."""
    pairs = _foldable_pairs(model)
    if not pairs:
        return model
    folded = {conv.name: _folded_conv(conv, norm) for conv, norm in pairs}
    norms = {norm.name for _, norm in pairs}

    def call(layer: keras.layers.Layer, *args, **kwargs):
        return args[0] if layer.name in norms else layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: folded.get(layer.name, layer),
                                    call_function=call)


def inference_model(model: keras.Model) -> keras.Model:
    """The serving graph's model: `model` with batch norm folded (`batch_norm_folded`) and, if it has grouped
    convolutions, those split by group; `model` itself when neither applies."""
    model = batch_norm_folded(model)
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


def compiled_predict(model: keras.Model, preprocessing: Preprocessing) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 images at the model's size -> probabilities, through the serving graph as one tf.function: what
    the SavedModel runs, without the file. An eager Keras call runs layer by layer from Python: ResNet-20
    took 45 ms an image that way, against 2.4-2.5 ms for the SavedModel (Intel Xeon AMX, benchmarks/README.md)."""
    serve, spec = serving_function(model, preprocessing, any_size=False)
    call = tf.function(serve, input_signature=[spec])
    return lambda images: call(tf.constant(images))["probabilities"].numpy()

