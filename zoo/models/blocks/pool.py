"""Pooling blocks: `max_pool`, `avg_pool`, `global_avg_pool`, `global_max_pool`."""
from __future__ import annotations

from zoo.common.schema import Padding, Size
from zoo.models.blocks.registry import register_block


@register_block("max_pool")
def max_pool(x, ops, *, name: str, pool_size: Size = 2, strides: Size | None = None, padding: Padding = "valid"):
    """Max pooling; `strides` defaults to `pool_size`, as in Keras."""
    return ops.pool(x, name=name, kind="max", pool_size=pool_size,
                    strides=pool_size if strides is None else strides, padding=padding)


@register_block("avg_pool")
def avg_pool(x, ops, *, name: str, pool_size: Size = 2, strides: Size | None = None, padding: Padding = "valid"):
    """Average pooling; `strides` defaults to `pool_size`, as in Keras."""
    return ops.pool(x, name=name, kind="avg", pool_size=pool_size,
                    strides=pool_size if strides is None else strides, padding=padding)


@register_block("global_avg_pool")
def global_avg_pool(x, ops, *, name: str):
    """The mean of each channel over the whole feature map."""
    return ops.global_pool(x, name=name, kind="avg")


@register_block("global_max_pool")
def global_max_pool(x, ops, *, name: str):
    """The maximum of each channel over the whole feature map."""
    return ops.global_pool(x, name=name, kind="max")
