"""The Keras implementation of the block primitives (see zoo.models.ops): stock layers, fixed names.

Layer names derive from the block's name: `conv1_pad`, `conv1_conv`, `conv1_bn`,
`conv1_relu`, `conv2_1_add`, ..., the scheme keras.applications uses for its ResNets.
"""
from __future__ import annotations

from typing import Sequence

import keras

from zoo.models import layers as zoo_layers
from zoo.models.ops import pair


class KerasOps:
    """Builds the real model; `layers` lists every layer created, in order."""

    def __init__(self, sync_batch_norm: bool = False) -> None:
        self.layers: list[keras.layers.Layer] = []
        self.sync_batch_norm = sync_batch_norm  # batch statistics all-reduced over the replicas of a tf.distribute run

    def _apply(self, layer: keras.layers.Layer, x):
        self.layers.append(layer)
        return layer(x)

    def shape(self, x) -> tuple[int, ...]:
        return tuple(x.shape[1:])

    def _explicit_padding(self, x, name: str, padding):
        """Integer padding is zero padding then a 'valid' operation, as in PyTorch and Caffe."""
        if isinstance(padding, str):
            return x, padding
        if pair(padding) == (0, 0):
            return x, "valid"
        return self._apply(keras.layers.ZeroPadding2D(pair(padding), name=f"{name}_pad"), x), "valid"

    def conv(self, x, *, name: str, filters: int, kernel_size, strides=1, padding="same", dilation_rate=1,
             groups: int = 1, use_bias: bool = True, separable: bool = False):
        x, padding = self._explicit_padding(x, name, padding)
        common = dict(kernel_size=pair(kernel_size), strides=pair(strides), padding=padding,
                      dilation_rate=pair(dilation_rate), use_bias=use_bias, name=f"{name}_conv")
        if separable:
            layer = keras.layers.SeparableConv2D(filters, **common)
        else:
            layer = keras.layers.Conv2D(filters, groups=groups, **common)
        return self._apply(layer, x)

    def pool(self, x, *, name: str, kind: str, pool_size, strides, padding):
        x, padding = self._explicit_padding(x, name, padding)
        cls = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}[kind]
        return self._apply(cls(pair(pool_size), strides=pair(strides), padding=padding, name=name), x)

    def global_pool(self, x, *, name: str, kind: str):
        cls = {"max": keras.layers.GlobalMaxPooling2D, "avg": keras.layers.GlobalAveragePooling2D}[kind]
        return self._apply(cls(name=name), x)

    def flatten(self, x, *, name: str):
        return self._apply(keras.layers.Flatten(name=name), x)

    def dense(self, x, *, name: str, units: int, use_bias: bool = True, activation: str = "none",
              dtype: str | None = None):
        activation = None if activation == "none" else activation
        return self._apply(keras.layers.Dense(units, use_bias=use_bias, activation=activation, dtype=dtype,
                                              name=name), x)

    def batch_norm(self, x, *, name: str, epsilon: float):
        return self._apply(zoo_layers.FusedBatchNormalization(epsilon=epsilon, synchronized=self.sync_batch_norm,
                                                             name=name), x)

    def activation(self, x, *, name: str, function: str):
        return self._apply(keras.layers.Activation(function, name=name), x)

    def dropout(self, x, *, name: str, rate: float):
        return self._apply(keras.layers.Dropout(rate, name=name), x)

    def lrn(self, x, *, name: str, size: int, alpha: float, beta: float, k: float):
        return self._apply(zoo_layers.LocalResponseNormalization(size, alpha, beta, k, name=name), x)

    def subsample_and_pad_channels(self, x, *, name: str, strides: int, channels: int):
        if strides > 1:  # a 1x1 max pool with a stride is plain subsampling, as option A takes it
            x = self._apply(keras.layers.MaxPooling2D(1, strides=strides, name=f"{name}_subsample"), x)
        return self._apply(zoo_layers.ChannelZeroPad(channels, name=f"{name}_zero_pad"), x)

    def add(self, xs: Sequence, *, name: str):
        return self._apply(keras.layers.Add(name=name), list(xs))

    def concat(self, xs: Sequence, *, name: str):
        return self._apply(keras.layers.Concatenate(name=name), list(xs))
