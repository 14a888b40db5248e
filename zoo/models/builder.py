"""Turning a model config into a model: the one loop that wires blocks together.

`trace` runs the config's blocks on any implementation of the block primitives: on
`zoo.models.ops.AnalyticOps` it yields shapes, parameters and MACs (inspect, ablations), on
`zoo.models.keras_ops.KerasOps` it yields Keras tensors (`build_model`), on
`zoo.models.torch_ops.TorchOps` the PyTorch twin (`TorchTwin`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from zoo.common.errors import ConfigError
from zoo.models.blocks import BLOCKS
from zoo.models.blocks.registry import injected
from zoo.models.config import LayerSpec, ModelConfig, load_model_config
from zoo.models.ops import AnalyticOps, Shape, ShapeError

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class TracedBlock:
    name: str
    spec: LayerSpec
    output: Any


def trace(config: ModelConfig, ops: Any, inputs: Any) -> Iterator[TracedBlock]:
    """Applies every block of `config` in order, yielding each block's output."""
    x = inputs
    for spec in config.layers:
        factory = BLOCKS[spec.type].factory
        model_args = {name: getattr(config, name) for name in injected(factory)}
        for name, args in spec.expand():
            try:
                x = factory(x, ops, name=name, **args, **model_args)
            except ShapeError as error:
                raise ConfigError(f"block {name!r}: {error}", source=config.source, key=spec.key) from None
            yield TracedBlock(name, spec, x)


def check_shapes(config: ModelConfig) -> Shape:
    """Runs the analytic trace, so a size that reaches zero is reported before Keras is called."""
    x = Shape(config.input_shape)
    for block in trace(config, AnalyticOps(), x):
        x = block.output
    return x


def build_model(config: "str | Path | Mapping[str, Any] | ModelConfig",
                input_shape: tuple[int, int, int] | None = None,
                num_classes: int | None = None, sync_batch_norm: bool = False) -> "keras.Model":
    """A functional Keras model from a config path, a shipped model's name or a mapping.

    `input_shape` and `num_classes` override the config's (the trainer takes them from the data);
    `sync_batch_norm` makes batch normalisation use the whole global batch under tf.distribute.
    """
    config = load_model_config(config)
    if input_shape is not None or num_classes is not None:
        config = config.with_overrides(input_shape, num_classes)
    import keras

    inputs, blocks = build_blocks(config, sync_batch_norm)
    model = keras.Model(inputs, blocks[-1].output, name=config.name)
    if config.pretrained:
        from zoo.models.pretrained import load_pretrained

        load_pretrained(model, config)
    return model


def build_blocks(config: ModelConfig, sync_batch_norm: bool = False) -> "tuple[keras.KerasTensor, list[TracedBlock]]":
    """The model's input and every block with its Keras output, the layers named as in `build_model`,
    so a model made of part of them (headless, or with features as outputs) shares its weights' names."""
    check_shapes(config)
    import keras

    from zoo.models.keras_ops import KerasOps

    inputs = keras.Input(config.input_shape, name="image")
    return inputs, list(trace(config, KerasOps(sync_batch_norm), inputs))
