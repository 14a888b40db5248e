"""Convolution blocks: `conv` and `separable_conv`, each convolution -> batch norm -> activation."""
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
