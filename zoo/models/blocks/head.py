"""Blocks of the classifier head: `flatten`, `dense`, `dropout`, `lrn` and `classifier`."""
from __future__ import annotations

from zoo.common.schema import Activation, Fraction, OddPositiveInt, PositiveFloat, PositiveInt
from zoo.models.blocks.registry import register_block


@register_block("flatten")
def flatten(x, ops, *, name: str):
    """Flattens an [H, W, C] map into H*W*C features."""
    return ops.flatten(x, name=name)


@register_block("dense")
def dense(x, ops, *, name: str, units: PositiveInt, activation: Activation = "relu", use_bias: bool = True):
    """A fully connected layer with its activation."""
    return ops.dense(x, name=name, units=units, activation=activation, use_bias=use_bias)


@register_block("dropout")
def dropout(x, ops, *, name: str, rate: Fraction = 0.5):
    """Drops a fraction `rate` of activations while training."""
    return ops.dropout(x, name=name, rate=rate)


@register_block("lrn")
def lrn(x, ops, *, name: str, size: OddPositiveInt = 5, alpha: PositiveFloat = 1e-4, beta: PositiveFloat = 0.75,
        k: PositiveFloat = 2.0):
    """Local response normalization across `size` channels (AlexNet, GoogLeNet)."""
    return ops.lrn(x, name=name, size=size, alpha=alpha, beta=beta, k=k)


@register_block("classifier")
def classifier(x, ops, *, name: str, num_classes: int, use_bias: bool = True):
    """The last dense layer: one unit per class of the dataset, softmax probabilities in float32."""
    # float32 even under mixed precision, so the softmax and the loss stay numerically safe.
    return ops.dense(x, name=name, units=num_classes, activation="softmax", use_bias=use_bias, dtype="float32")
