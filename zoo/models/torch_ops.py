"""The PyTorch implementation of the block primitives (see zoo.models.ops): any config as a torch module.

`TorchTwin(config)` is the network `build_model(config)` builds, in PyTorch eager: the config's
blocks run once on `TorchOps`, which creates one torch module per Keras layer, under the Keras
layer's name, and records each operation; `forward` replays the record, so a call walks no config.
It takes NCHW images (channels_last memory format works too) and returns logits, as a PyTorch user's
hand-written network would: convolutions pad symmetrically inside the convolution where TensorFlow's
"same" is symmetric, and `flatten` flattens NCHW, so the dense layer after it takes its rows in CHW
order. `copy_keras_weights(model, twin)` copies a Keras model's weights into the twin (kernels
HWIO -> OIHW, those rows HWC -> CHW), so a test can check that the two compute the same function
and a benchmark compares like with like. One primitive has no PyTorch twin: an average pool with
TensorFlow's "same" padding where that padding is uneven (PyTorch averages over symmetric padding
only); it is refused when the twin is built. Needs torch (the `torch` extra).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from zoo.common.errors import ZooError
from zoo.models.config import ModelConfig, load_model_config
from zoo.models.ops import Pair, pair, total_padding

if TYPE_CHECKING:
    import keras

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU, "elu": nn.ELU,
    "selu": nn.SELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


@dataclasses.dataclass(frozen=True)
class Node:
    """One recorded value: its position in the replay and an example of it (batch 1), for shapes."""

    index: int
    example: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Step:
    function: Callable[..., torch.Tensor]
    inputs: tuple[int, ...]


class TorchOps:
    """Creates torch modules named as the Keras layers and records the operations between them."""

    def __init__(self, modules: nn.ModuleDict) -> None:
        self.modules = modules
        self.steps: list[Step] = []
        self.flattened: dict[str, tuple[int, int, int]] = {}  # dense layer -> the (H, W, C) map it flattens
        self._pending_flatten: tuple[int, int, int] | None = None

    def input(self, example: torch.Tensor) -> Node:
        return Node(0, example)

    def _record(self, function: Callable[..., torch.Tensor], *inputs: Node) -> Node:
        """Value 0 is the input; step i's output is value i + 1."""
        with torch.no_grad():
            example = function(*(node.example for node in inputs))
        self.steps.append(Step(function, tuple(node.index for node in inputs)))
        return Node(len(self.steps), example)

    def _module(self, name: str, module: nn.Module) -> nn.Module:
        """`module`, registered under the Keras layer's name, in inference mode (batch norm on its running
        statistics even while the examples are traced)."""
        self.modules[name] = module
        return module.eval()

    def shape(self, x: Node) -> tuple[int, ...]:
        """(H, W, C) or (features,), as the other implementations give it."""
        dims = tuple(x.example.shape[1:])
        return (*dims[1:], dims[0]) if len(dims) == 3 else dims

    def _padding(self, x: Node, kernel: Pair, strides: Pair, dilation: Pair,
                 padding: str | int | Pair) -> tuple[tuple[int, int], tuple[int, int]]:
        """(top, bottom), (left, right): TensorFlow's "same" puts an odd extra row at the bottom."""
        if isinstance(padding, str):
            sides = []
            for axis, size in enumerate(x.example.shape[2:]):
                total = total_padding(size, kernel[axis], strides[axis], dilation[axis], padding)
                sides.append((total // 2, total - total // 2))
            return sides[0], sides[1]
        height, width = pair(padding)
        return (height, height), (width, width)

    def _padded(self, x: Node, name: str, sides: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0,
                inside: bool = True) -> tuple[Node, tuple[int, int]]:
        """Symmetric padding is left to the operation (unless `inside` is False); otherwise a pad module first.
        Returns the padded value and the (height, width) padding left to the operation."""
        (top, bottom), (left, right) = sides
        if top == bottom and left == right and (inside or top == left == 0):
            return x, (top, left)
        pad = self._module(f"{name}_pad", nn.ConstantPad2d((left, right, top, bottom), value))
        return self._record(pad, x), (0, 0)

    def conv(self, x: Node, *, name: str, filters: int, kernel_size: int | Pair, strides: int | Pair = 1,
             padding: str | int | Pair = "same", dilation_rate: int | Pair = 1, groups: int = 1, use_bias: bool = True,
             separable: bool = False) -> Node:
        kernel, stride, dilation = pair(kernel_size), pair(strides), pair(dilation_rate)
        x, inside = self._padded(x, name, self._padding(x, kernel, stride, dilation, padding))
        channels = x.example.shape[1]
        common = dict(stride=stride, padding=inside, dilation=dilation)
        if separable:
            layer = nn.Sequential(nn.Conv2d(channels, channels, kernel, groups=channels, bias=False, **common),
                                  nn.Conv2d(channels, filters, 1, bias=use_bias))
        else:
            layer = nn.Conv2d(channels, filters, kernel, groups=groups, bias=use_bias, **common)
        return self._record(self._module(f"{name}_conv", layer), x)

    def pool(self, x: Node, *, name: str, kind: str, pool_size: int | Pair, strides: int | Pair,
             padding: str | int | Pair) -> Node:
        kernel, stride = pair(pool_size), pair(strides)
        sides = self._padding(x, kernel, stride, (1, 1), padding)
        same = padding == "same"
        if kind == "max":
            # TensorFlow's "same" never picks a padded value, as PyTorch's own padding; Keras zero-pads an
            # integer padding before the pool, so there zeros can win
            x, inside = self._padded(x, name, sides, float("-inf") if same else 0.0, inside=same)
            return self._record(self._module(name, nn.MaxPool2d(kernel, stride, inside)), x)
        if same:  # the average is over the image's pixels only, which PyTorch does for even padding
            (top, bottom), (left, right) = sides
            if top != bottom or left != right:
                raise ZooError(f"{name}: an average pool with TensorFlow's 'same' padding pads a "
                               f"{'x'.join(map(str, x.example.shape[2:]))} map unevenly here (kernel {kernel}, stride "
                               f"{stride}: rows {top} above and {bottom} below, columns {left} left and {right} "
                               "right), which PyTorch's AvgPool2d cannot average over; expected even padding")
            pool = nn.AvgPool2d(kernel, stride, (top, left), count_include_pad=False)
            return self._record(self._module(name, pool), x)
        x, _ = self._padded(x, name, sides, inside=False)  # Keras zero-pads first: the zeros count
        return self._record(self._module(name, nn.AvgPool2d(kernel, stride)), x)

    def global_pool(self, x: Node, *, name: str, kind: str) -> Node:
        pool = nn.AdaptiveMaxPool2d(1) if kind == "max" else nn.AdaptiveAvgPool2d(1)
        return self._record(self._module(name, nn.Sequential(pool, nn.Flatten())), x)

    def flatten(self, x: Node, *, name: str) -> Node:
        if x.example.dim() == 4:
            channels, height, width = x.example.shape[1:]
            self._pending_flatten = (height, width, channels)
        return self._record(self._module(name, nn.Flatten()), x)

    def dense(self, x: Node, *, name: str, units: int, use_bias: bool = True, activation: str = "none",
              dtype: str | None = None) -> Node:
        if self._pending_flatten is not None:
            self.flattened[name], self._pending_flatten = self._pending_flatten, None
        layer = nn.Linear(x.example.shape[1], units, bias=use_bias)
        if activation not in ("none", "softmax"):
            layer = nn.Sequential(layer, ACTIVATIONS[activation]())
        return self._record(self._module(name, layer), x)  # softmax is left out: the twin returns logits

    def batch_norm(self, x: Node, *, name: str, epsilon: float) -> Node:
        return self._record(self._module(name, nn.BatchNorm2d(x.example.shape[1], eps=epsilon)), x)

    def activation(self, x: Node, *, name: str, function: str) -> Node:
        return self._record(self._module(name, ACTIVATIONS[function]()), x)

    def dropout(self, x: Node, *, name: str, rate: float) -> Node:
        return self._record(self._module(name, nn.Dropout(rate)), x)

    def lrn(self, x: Node, *, name: str, size: int, alpha: float, beta: float, k: float) -> Node:
        # PyTorch divides alpha by size (Caffe's convention); the zoo's layer uses the paper's alpha.
        return self._record(self._module(name, nn.LocalResponseNorm(size, alpha * size, beta, k)), x)

    def subsample_and_pad_channels(self, x: Node, *, name: str, strides: int, channels: int) -> Node:
        extra = channels - x.example.shape[1]

        def shortcut(tensor: torch.Tensor) -> torch.Tensor:
            if strides > 1:
                tensor = tensor[:, :, ::strides, ::strides]
            return functional.pad(tensor, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        return self._record(shortcut, x)

    def add(self, xs: Sequence[Node], *, name: str) -> Node:
        return self._record(lambda *tensors: sum(tensors[1:], tensors[0]), *xs)

    def concat(self, xs: Sequence[Node], *, name: str) -> Node:
        return self._record(lambda *tensors: torch.cat(tensors, dim=1), *xs)


class TorchTwin(nn.Module):
    """A model config as a PyTorch module: NCHW float images in, logits out."""

    def __init__(self, config: "str | ModelConfig") -> None:
        super().__init__()
        from zoo.models.builder import check_shapes, trace

        config = load_model_config(config)
        check_shapes(config)
        self.name = config.name
        self.layers = nn.ModuleDict()
        ops = TorchOps(self.layers)
        height, width, channels = config.input_shape
        for _ in trace(config, ops, ops.input(torch.zeros(1, channels, height, width))):
            pass
        self.steps, self.flattened = ops.steps, ops.flattened
        # values no later step reads, dropped after each step as a hand-written forward lets them go
        last_read = {index: position for position, step in enumerate(self.steps) for index in step.inputs}
        self.released = [[index for index in step.inputs if last_read[index] == position]
                         for position, step in enumerate(self.steps)]
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        values: list[torch.Tensor | None] = [images]
        for step, released in zip(self.steps, self.released):
            values.append(step.function(*(values[i] for i in step.inputs)))
            for index in released:
                values[index] = None
        return values[-1]


def copy_keras_weights(model: "keras.Model", twin: TorchTwin) -> None:
    """Copies every weight of `model` (built from the same config) into `twin`, shapes checked."""
    for name, module in twin.layers.items():
        targets = [tensor for key, tensor in module.state_dict().items() if not key.endswith("num_batches_tracked")]
        if not targets:
            continue
        values = _torch_layout(model.get_layer(name), twin.flattened.get(name))
        if len(values) != len(targets):
            raise ZooError(f"{name}: the Keras layer has {len(values)} weights, the twin's module {len(targets)}")
        for target, value in zip(targets, values):
            if tuple(target.shape) != value.shape:
                raise ZooError(f"{name}: expected a weight of shape {tuple(target.shape)}, received {value.shape}")
            target.copy_(torch.from_numpy(value))


def _torch_layout(layer: "keras.layers.Layer", flattened: tuple[int, int, int] | None) -> "list[np.ndarray]":
    """A Keras layer's weights in the order and layout of the twin's module's state_dict."""
    import keras

    kind = type(layer).__name__
    if isinstance(layer, keras.layers.BatchNormalization):
        return [np.asarray(w) for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
    if kind == "SeparableConv2D":
        depthwise, pointwise, *bias = layer.get_weights()
        return [depthwise.transpose(2, 3, 0, 1), pointwise.transpose(3, 2, 0, 1), *bias]
    if kind == "Conv2D":
        kernel, *bias = layer.get_weights()
        return [kernel.transpose(3, 2, 0, 1), *bias]
    if kind == "Dense":
        kernel, *bias = layer.get_weights()
        if flattened:  # rows in Keras's HWC order -> the NCHW flatten's CHW order
            height, width, channels = flattened
            kernel = kernel.reshape(height, width, channels, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
        return [np.ascontiguousarray(kernel.T), *bias]
    raise ZooError(f"{layer.name}: no PyTorch layout known for a {kind} layer's weights")
