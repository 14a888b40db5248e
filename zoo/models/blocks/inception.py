"""The Inception v1 module (Szegedy et al. 2014, Figure 2b): four branches concatenated.

1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1 projection, each convolution with its
activation; output channels are filters_1x1 + filters_3x3 + filters_5x5 + pool_proj.
`kernel_size_5x5` is the "5x5" branch's kernel: 5 in the paper; torchvision's GoogLeNet has 3 there,
a slip its weights were trained with and kept for (pytorch/vision#906).
"""
from __future__ import annotations

from zoo.common.schema import Activation, PositiveFloat, PositiveInt
from zoo.models.blocks.conv import Norm, conv
from zoo.models.blocks.registry import register_block


@register_block("inception")
def inception(x, ops, *, name: str, filters_1x1: PositiveInt, filters_3x3_reduce: PositiveInt,
              filters_3x3: PositiveInt, filters_5x5_reduce: PositiveInt, filters_5x5: PositiveInt,
              pool_proj: PositiveInt, norm: Norm = "none", norm_epsilon: PositiveFloat = 1e-3,
              use_bias: bool | None = None, activation: Activation = "relu", kernel_size_5x5: PositiveInt = 5):
    """The GoogLeNet module: 1x1, 1x1->3x3, 1x1->5x5 and pool->1x1 branches, concatenated."""
    common = dict(norm=norm, norm_epsilon=norm_epsilon, use_bias=use_bias, activation=activation)
    branch_1x1 = conv(x, ops, name=f"{name}_1x1", filters=filters_1x1, kernel_size=1, **common)
    branch_3x3 = conv(x, ops, name=f"{name}_3x3_reduce", filters=filters_3x3_reduce, kernel_size=1, **common)
    branch_3x3 = conv(branch_3x3, ops, name=f"{name}_3x3", filters=filters_3x3, kernel_size=3, **common)
    branch_5x5 = conv(x, ops, name=f"{name}_5x5_reduce", filters=filters_5x5_reduce, kernel_size=1, **common)
    branch_5x5 = conv(branch_5x5, ops, name=f"{name}_5x5", filters=filters_5x5, kernel_size=kernel_size_5x5,
                      **common)
    branch_pool = ops.pool(x, name=f"{name}_pool", kind="max", pool_size=3, strides=1, padding="same")
    branch_pool = conv(branch_pool, ops, name=f"{name}_pool_proj", filters=pool_proj, kernel_size=1, **common)
    return ops.concat([branch_1x1, branch_3x3, branch_5x5, branch_pool], name=f"{name}_concat")
