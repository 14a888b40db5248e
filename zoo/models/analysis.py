"""Analytic inspection of a model config: one row per block, with totals, and no Keras needed.

Each row has the block's output shape from the convolution arithmetic, its parameters (as
Keras's count_params() counts them, batch-norm moving statistics included), its trainable
parameters, its multiply-accumulates and the receptive field and jump of its output.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from zoo.models.builder import trace
from zoo.models.config import ModelConfig
from zoo.models.ops import AnalyticOps, Shape


@dataclasses.dataclass(frozen=True)
class BlockRow:
    name: str
    type: str
    layer: str  # the config entry it comes from (a repeated layer gives several blocks)
    output_shape: list[int]
    params: int
    trainable_params: int
    macs: int
    receptive_field: list[int]
    jump: list[int]

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Analysis:
    config: ModelConfig
    rows: list[BlockRow]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def row(self, name: str) -> BlockRow:
        """The row of block `name`, or of the last repeat of a repeated layer called `name`."""
        matches = [r for r in self.rows if r.name == name or r.layer == name]
        if not matches:
            raise KeyError(name)
        return matches[-1]


def analyze(config: ModelConfig) -> Analysis:
    """Shapes, parameters, MACs and receptive fields of every block of `config`."""
    ops = AnalyticOps()
    rows = []
    before = (0, 0, 0)
    for block in trace(config, ops, Shape(config.input_shape)):
        out: Shape = block.output
        rows.append(BlockRow(block.name, block.spec.type, block.spec.name, list(out.dims), ops.params - before[0],
                             ops.trainable_params - before[1], ops.macs - before[2],
                             list(out.receptive_field), list(out.jump)))
        before = (ops.params, ops.trainable_params, ops.macs)
    return Analysis(config, rows)


def human(number: float) -> str:
    """12345678 -> '12.35M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.2f}{unit}"
    return f"{number:g}"


def _size(values: list[int]) -> str:
    return "x".join(str(v) for v in values)


def format_table(analysis: Analysis) -> str:
    """The inspect table: one row per block, then totals."""
    config = analysis.config
    header = ("block", "type", "output", "params", "MACs", "RF", "jump")
    lines = [(r.name, r.type, _size(r.output_shape), f"{r.params:,}", human(r.macs),
              _size(r.receptive_field) if r.receptive_field[0] != r.receptive_field[1] else str(r.receptive_field[0]),
              _size(r.jump) if r.jump[0] != r.jump[1] else str(r.jump[0])) for r in analysis.rows]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    right = {3, 4, 5, 6}

    def fmt(row):
        return "  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))

    rule = "-" * len(fmt(header))
    return "\n".join([
        f"{config.name}: input {_size(list(config.input_shape))}, {config.num_classes} classes ({config.source})",
        fmt(header), rule, *map(fmt, lines), rule,
        f"total: {analysis.params:,} parameters ({analysis.trainable_params:,} trainable), "
        f"{analysis.macs:,} MACs ({human(analysis.macs)})",
    ])


def models_table() -> str:
    """A Markdown table of every shipped model config, generated from the configs themselves."""
    from zoo.models.config import load_model_config, shipped_model_configs
    from zoo.models.presets import get_preset, list_presets

    trained: dict[str, list[str]] = {}
    for name in list_presets():
        card = get_preset(name).card
        trained.setdefault(card["model"]["name"], []).append(f"`{name}` ({card['metrics']['top1']:.2%})")
    lines = ["| model | input | classes | parameters | trainable | MACs | presets (top-1) | description |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for path in shipped_model_configs():
        analysis = analyze(load_model_config(path))
        config = analysis.config
        lines.append(f"| [{config.name}](zoo/configs/models/{path.name}) | {_size(list(config.input_shape))} | "
                     f"{config.num_classes} | {analysis.params:,} | {analysis.trainable_params:,} | "
                     f"{human(analysis.macs)} | {', '.join(trained.get(config.name, [])) or '-'} | "
                     f"{config.description} |")
    return "\n".join(lines)


# keras.io's published ImageNet accuracies (%, top-1 and top-5, 224x224 centre crop) of the twins `imagenet` loads
KERAS_APPLICATIONS_ACCURACY = {"VGG16": (71.3, 90.1), "VGG19": (71.3, 90.0), "ResNet50": (74.9, 92.1),
                               "ResNet101": (76.4, 92.8), "ResNet152": (76.6, 93.1)}


def imagenet_weights_table() -> str:
    """A Markdown table of which shipped config takes which ImageNet weights, with the source's published top-1."""
    from zoo.models.config import load_model_config, shipped_model_configs

    lines = ["| model | `weights=` | weights of | published top-1 | top-5 | input the weights expect |",
             "|---|---|---|---:|---:|---|"]
    for path in shipped_model_configs():
        config = load_model_config(path)
        if config.torchvision:
            twin = config.torchvision
            lines.append(f"| {config.name} | `torchvision` | torchvision `{twin.model}` (IMAGENET1K_V1) | "
                         f"{twin.top1:.2f}% | {twin.top5:.2f}% | RGB, mean {_values(twin.mean)}, std "
                         f"{_values(twin.std)} (measured on the 224 centre crop of images resized to 256) |")
        if config.keras_application:
            top1, top5 = KERAS_APPLICATIONS_ACCURACY.get(config.keras_application, (None, None))
            lines.append(f"| {config.name} | `imagenet` | keras.applications `{config.keras_application}` | "
                         f"{_percent(top1)} | {_percent(top5)} | BGR, Caffe's mean subtracted, no scaling |")
    return "\n".join(lines)


def _values(numbers) -> str:
    return ", ".join(f"{n:g}" for n in numbers)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"

