"""The primitive operations blocks are written in, and their analytic implementation.

Block factories never touch Keras directly: they call `ops.conv(...)`, `ops.batch_norm(...)`
and so on. Three classes implement this interface:

- `AnalyticOps` (here) works on `Shape`s: it computes output shapes with the convolution
  arithmetic out = floor((in + total_padding - dilation*(kernel-1) - 1) / stride) + 1, and
  accumulates parameters, multiply-accumulates (MACs) and the receptive field and jump, without
  importing TensorFlow. A size that would reach zero raises `ShapeError` before Keras is called.
- `zoo.models.keras_ops.KerasOps` creates stock Keras layers with fixed names.
- `zoo.models.torch_ops.TorchOps` creates the PyTorch modules of the same network (`TorchTwin`), for
  benchmarks and parity checks against PyTorch; it needs torch.

Because a block is written once against this interface, the analytic numbers and the real model
cannot drift apart; tests check every block of every shipped config against Keras.
MACs count convolutions and dense layers (the convention of the papers and of fvcore/ptflops);
normalisation, activations and pooling are not counted.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

Pair = tuple[int, int]


class ShapeError(ValueError):
    """A block whose input does not fit it (a size that reaches zero, mismatched branches)."""


def pair(value: int | Sequence[int]) -> Pair:
    """(height, width) from an int or a pair."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def total_padding(size: int, kernel: int, stride: int, dilation: int, padding: str | int) -> int:
    """Rows (or columns) of padding added in all, as Keras/TF apply 'same', 'valid' or int p."""
    if padding == "valid":
        return 0
    if padding == "same":
        effective = dilation * (kernel - 1) + 1
        return max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return 2 * int(padding)


def output_size(size: int, kernel: int, stride: int, dilation: int, padding: str | int) -> int:
    """floor((in + total_padding - dilation*(kernel-1) - 1) / stride) + 1."""
    pad = total_padding(size, kernel, stride, dilation, padding)
    return (size + pad - dilation * (kernel - 1) - 1) // stride + 1


@dataclasses.dataclass(frozen=True)
class Shape:
    """An activation without its batch dimension: (H, W, C) or (features,), plus where it looks.

    `receptive_field` is how many input pixels (height, width) one output value depends on;
    `jump` is the distance in input pixels between neighbouring output values.
    """

    dims: tuple[int, ...]
    receptive_field: Pair = (1, 1)
    jump: Pair = (1, 1)

    @property
    def channels(self) -> int:
        return self.dims[-1]


class AnalyticOps:
    """Computes shapes, parameters, MACs and receptive fields; builds nothing."""

    def __init__(self) -> None:
        self.params = 0
        self.trainable_params = 0
        self.macs = 0

    def shape(self, x: Shape) -> tuple[int, ...]:
        return x.dims

    def _count(self, params: int, macs: int = 0, non_trainable: int = 0) -> None:
        self.params += params + non_trainable
        self.trainable_params += params
        self.macs += macs

    def _spatial(self, x: Shape, what: str, kernel: Pair, strides: Pair, dilation: Pair,
                 padding: str | int | Pair) -> tuple[Pair, Pair, Pair]:
        if len(x.dims) != 3:
            raise ShapeError(f"{what} needs an [H, W, C] input, received shape {list(x.dims)}")
        pads = pair(padding) if not isinstance(padding, str) else (padding, padding)
        out, rf, jump = [], [], []
        for axis, size in enumerate(x.dims[:2]):
            k, s, d, p = kernel[axis], strides[axis], dilation[axis], pads[axis]
            n = output_size(size, k, s, d, p)
            if n <= 0:
                raise ShapeError(
                    f"{what} output {('height', 'width')[axis]} would be {n} (input {size}, kernel {k}, "
                    f"dilation {d}, stride {s}, padding {p!r}): the image is too small for this stack")
            out.append(n)
            rf.append(x.receptive_field[axis] + d * (k - 1) * x.jump[axis])
            jump.append(x.jump[axis] * s)
        return tuple(out), tuple(rf), tuple(jump)  # type: ignore[return-value]

    def conv(self, x: Shape, *, name: str, filters: int, kernel_size: int | Pair, strides: int | Pair = 1,
             padding: str | int | Pair = "same", dilation_rate: int | Pair = 1, groups: int = 1,
             use_bias: bool = True, separable: bool = False) -> Shape:
        channels = x.channels
        if channels % groups or filters % groups:
            raise ShapeError(f"groups={groups} must divide the input channels ({channels}) "
                             f"and filters ({filters})")
        if max(pair(dilation_rate)) > 1 and max(pair(strides)) > 1:
            raise ShapeError(f"dilation_rate={dilation_rate} cannot be combined with strides={strides}: "
                             "TensorFlow convolutions take one or the other")
        k = pair(kernel_size)
        (h, w), rf, jump = self._spatial(x, "convolution", k, pair(strides), pair(dilation_rate), padding)
        if separable:
            weights = k[0] * k[1] * channels + channels * filters
        else:
            weights = k[0] * k[1] * (channels // groups) * filters
        pointwise_macs = h * w * channels * filters
        macs = h * w * k[0] * k[1] * channels + pointwise_macs if separable else h * w * weights
        self._count(weights + (filters if use_bias else 0), macs)
        return Shape((h, w, filters), rf, jump)

    def pool(self, x: Shape, *, name: str, kind: str, pool_size: int | Pair, strides: int | Pair,
             padding: str | int | Pair) -> Shape:
        (h, w), rf, jump = self._spatial(x, f"{kind} pooling", pair(pool_size), pair(strides), (1, 1), padding)
        return Shape((h, w, x.channels), rf, jump)

    def _whole_input(self, x: Shape, what: str) -> Pair:
        if len(x.dims) != 3:
            raise ShapeError(f"{what} needs an [H, W, C] input, received shape {list(x.dims)}")
        return tuple(x.receptive_field[a] + (x.dims[a] - 1) * x.jump[a] for a in (0, 1))  # type: ignore

    def global_pool(self, x: Shape, *, name: str, kind: str) -> Shape:
        return Shape((x.channels,), self._whole_input(x, "global pooling"), x.jump)

    def flatten(self, x: Shape, *, name: str) -> Shape:
        if len(x.dims) == 1:
            return x
        return Shape((math.prod(x.dims),), self._whole_input(x, "flatten"), x.jump)

    def dense(self, x: Shape, *, name: str, units: int, use_bias: bool = True, activation: str = "none",
              dtype: str | None = None) -> Shape:
        if len(x.dims) != 1:
            raise ShapeError(f"a dense layer needs a flat input, received shape {list(x.dims)}: "
                             "put a flatten or global_avg_pool block before it")
        self._count(x.dims[0] * units + (units if use_bias else 0), x.dims[0] * units)
        return Shape((units,), x.receptive_field, x.jump)

    def batch_norm(self, x: Shape, *, name: str, epsilon: float) -> Shape:
        # gamma and beta train; the moving mean and variance are counted by Keras's count_params()
        self._count(2 * x.channels, non_trainable=2 * x.channels)
        return x

    def activation(self, x: Shape, *, name: str, function: str) -> Shape:
        return x

    def dropout(self, x: Shape, *, name: str, rate: float) -> Shape:
        return x

    def lrn(self, x: Shape, *, name: str, size: int, alpha: float, beta: float, k: float) -> Shape:
        return x

    def subsample_and_pad_channels(self, x: Shape, *, name: str, strides: int, channels: int) -> Shape:
        (h, w), rf, jump = self._spatial(x, "shortcut", (1, 1), (strides, strides), (1, 1), "valid")
        if channels < x.channels:
            raise ShapeError(f"a zero-padded shortcut cannot reduce channels ({x.channels} -> {channels})")
        return Shape((h, w, channels), rf, jump)

    def _merge(self, xs: Sequence[Shape], what: str, channels: int) -> Shape:
        first = xs[0]
        if any(x.dims[:-1] != first.dims[:-1] or x.jump != first.jump for x in xs):
            raise ShapeError(f"{what} of branches with different shapes: {[list(x.dims) for x in xs]}")
        rf = tuple(max(x.receptive_field[a] for x in xs) for a in (0, 1))
        return Shape(first.dims[:-1] + (channels,), rf, first.jump)  # type: ignore[arg-type]

    def add(self, xs: Sequence[Shape], *, name: str) -> Shape:
        if len({x.channels for x in xs}) > 1:
            raise ShapeError(f"addition of branches with different shapes: {[list(x.dims) for x in xs]}")
        return self._merge(xs, "addition", xs[0].channels)

    def concat(self, xs: Sequence[Shape], *, name: str) -> Shape:
        return self._merge(xs, "concatenation", sum(x.channels for x in xs))
