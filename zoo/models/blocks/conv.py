"""Convolution blocks: `conv`, `separable_conv` and `bottleneck`, each convolution -> norm -> activation."""
from __future__ import annotations

from typing import Literal

from zoo.common.schema import Activation, Padding, PositiveFloat, PositiveInt, Size
from zoo.models.blocks.registry import register_block

Norm = Literal["batch", "none"]


def _conv_norm_act(x, ops, *, name, filters, kernel_size, strides, padding, dilation_rate, groups, use_bias,
                   norm, norm_epsilon, activation, separable):
    # A bias before batch norm is redundant (the norm's beta absorbs it), so it is off by default there.
    x = ops.conv(x, name=name, filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                 dilation_rate=dilation_rate, groups=groups, separable=separable,
                 use_bias=(norm == "none") if use_bias is None else use_bias)
    if norm == "batch":
        x = ops.batch_norm(x, name=f"{name}_bn", epsilon=norm_epsilon)
    if activation != "none":
        x = ops.activation(x, name=f"{name}_{activation}", function=activation)
    return x


@register_block("conv")
def conv(x, ops, *, name: str, filters: PositiveInt, kernel_size: Size = 3, strides: Size = 1,
         padding: Padding = "same", dilation_rate: Size = 1, groups: PositiveInt = 1,
         use_bias: bool | None = None, norm: Norm = "none", norm_epsilon: PositiveFloat = 1e-3,
         activation: Activation = "relu"):
    """A 2D convolution (grouped or dilated if asked), optional batch norm, then an activation."""
    return _conv_norm_act(x, ops, name=name, filters=filters, kernel_size=kernel_size, strides=strides,
                          padding=padding, dilation_rate=dilation_rate, groups=groups, use_bias=use_bias,
                          norm=norm, norm_epsilon=norm_epsilon, activation=activation, separable=False)


@register_block("separable_conv")
def separable_conv(x, ops, *, name: str, filters: PositiveInt, kernel_size: Size = 3, strides: Size = 1,
                   padding: Padding = "same", dilation_rate: Size = 1, use_bias: bool | None = None,
                   norm: Norm = "none", norm_epsilon: PositiveFloat = 1e-3, activation: Activation = "relu"):
    """A depthwise convolution then a pointwise 1x1 one (k*k*C_in + C_in*C_out weights), norm, activation."""
    return _conv_norm_act(x, ops, name=name, filters=filters, kernel_size=kernel_size, strides=strides,
                          padding=padding, dilation_rate=dilation_rate, groups=1, use_bias=use_bias,
                          norm=norm, norm_epsilon=norm_epsilon, activation=activation, separable=True)


@register_block("bottleneck")
def bottleneck(x, ops, *, name: str, filters: PositiveInt, kernel_size: Size = 3, strides: Size = 1,
               padding: Padding = "same", reduced_filters: PositiveInt | None = None, use_bias: bool | None = None,
               norm: Norm = "none", norm_epsilon: PositiveFloat = 1e-3, activation: Activation = "relu"):
    """1x1 reduce to `reduced_filters` (default filters/4), kxk, 1x1 expand to `filters`; no shortcut.

    The reduce-then-convolve of GoogLeNet's branches and ResNet-50's bottleneck (without its
    shortcut), so it can stand in for a plain `conv` of the same output width.
    """
    reduced = reduced_filters or max(filters // 4, 1)
    common = dict(use_bias=use_bias, norm=norm, norm_epsilon=norm_epsilon, activation=activation)
    x = conv(x, ops, name=f"{name}_reduce", filters=reduced, kernel_size=1, **common)
    x = conv(x, ops, name=f"{name}_{_size(kernel_size)}", filters=reduced, kernel_size=kernel_size, strides=strides,
             padding=padding, **common)
    return conv(x, ops, name=f"{name}_expand", filters=filters, kernel_size=1, **common)


def _size(kernel_size) -> str:
    """'3x3' for 3 or (3, 3): the middle convolution's name says its size."""
    height, width = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return f"{height}x{width}"
