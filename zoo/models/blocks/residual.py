"""Residual blocks (He et al. 2015): `residual_basic` (two 3x3) and `residual_bottleneck` (1x1-3x3-1x1).

The shortcut is the identity when the block keeps its shape. When it changes (a stride, or
new channels) it is `projection`, a 1x1 convolution with batch norm (option B), or `zero_pad`,
subsampling plus zero channels with no parameters (option A, the paper's CIFAR-10 nets).
Layers are named as keras.applications names its ResNets: NAME_0 the shortcut, NAME_1... the
main path, NAME_add and NAME_out. `padding` is the 3x3 convolutions': "same" is TensorFlow's (with a
stride of 2 on an even size, the extra row and column at the bottom and right), 1 is PyTorch's (one on
every side), which torchvision's ResNets need for their weights to compute what they compute there.
"""
from __future__ import annotations

from typing import Literal

from zoo.common.schema import Activation, Padding, PositiveFloat, PositiveInt
from zoo.models.blocks.conv import conv
from zoo.models.blocks.registry import register_block

Shortcut = Literal["projection", "zero_pad"]


def _shortcut(x, ops, *, name, kind, strides, channels, use_bias, norm_epsilon):
    if strides == 1 and ops.shape(x)[-1] == channels:
        return x
    if kind == "zero_pad":
        return ops.subsample_and_pad_channels(x, name=f"{name}_0", strides=strides, channels=channels)
    return conv(x, ops, name=f"{name}_0", filters=channels, kernel_size=1, strides=strides, use_bias=use_bias,
                norm="batch", norm_epsilon=norm_epsilon, activation="none")


def _merge(shortcut, x, ops, *, name, activation):
    # Add([shortcut, main]) in this order, as keras.applications does, so the twins' graphs match.
    x = ops.add([shortcut, x], name=f"{name}_add")
    return x if activation == "none" else ops.activation(x, name=f"{name}_out", function=activation)


@register_block("residual_basic")
def residual_basic(x, ops, *, name: str, filters: PositiveInt, strides: PositiveInt = 1,
                   shortcut: Shortcut = "projection", use_bias: bool = False,
                   norm_epsilon: PositiveFloat = 1e-5, activation: Activation = "relu", padding: Padding = "same"):
    """Two 3x3 convolutions with batch norm and a shortcut (ResNet-18/34, the CIFAR ResNets)."""
    common = dict(use_bias=use_bias, norm="batch", norm_epsilon=norm_epsilon)
    skip = _shortcut(x, ops, name=name, kind=shortcut, strides=strides, channels=filters,
                     use_bias=use_bias, norm_epsilon=norm_epsilon)
    x = conv(x, ops, name=f"{name}_1", filters=filters, kernel_size=3, strides=strides, padding=padding,
             activation=activation, **common)
    x = conv(x, ops, name=f"{name}_2", filters=filters, kernel_size=3, padding=padding, activation="none", **common)
    return _merge(skip, x, ops, name=name, activation=activation)


@register_block("residual_bottleneck")
def residual_bottleneck(x, ops, *, name: str, filters: PositiveInt, strides: PositiveInt = 1,
                        expansion: PositiveInt = 4, stride_on: Literal["1x1", "3x3"] = "1x1",
                        shortcut: Shortcut = "projection", use_bias: bool = False,
                        norm_epsilon: PositiveFloat = 1e-5, activation: Activation = "relu", padding: Padding = "same"):
    """1x1 reduce, 3x3, 1x1 expand to filters*expansion, with a shortcut (ResNet-50/101/152).

    `stride_on: 1x1` is the original ResNet and keras.applications; `3x3` is torchvision's
    "ResNet v1.5".
    """
    common = dict(use_bias=use_bias, norm="batch", norm_epsilon=norm_epsilon)
    skip = _shortcut(x, ops, name=name, kind=shortcut, strides=strides, channels=filters * expansion,
                     use_bias=use_bias, norm_epsilon=norm_epsilon)
    x = conv(x, ops, name=f"{name}_1", filters=filters, kernel_size=1, strides=strides if stride_on == "1x1" else 1,
             activation=activation, **common)
    x = conv(x, ops, name=f"{name}_2", filters=filters, kernel_size=3, strides=strides if stride_on == "3x3" else 1,
             padding=padding, activation=activation, **common)
    x = conv(x, ops, name=f"{name}_3", filters=filters * expansion, kernel_size=1, activation="none", **common)
    return _merge(skip, x, ops, name=name, activation=activation)
