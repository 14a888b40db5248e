"""The block registry: each config `type` maps to one factory function.

A factory has the signature `factory(x, ops, *, name, **params)`: it wires `ops` primitives
(zoo.models.ops) into a block and returns the output tensor. Its keyword-only parameters, with their
type hints and defaults, are the block's config schema: the registry derives allowed keys,
required keys and value checks from the signature, so adding a block is one function and one
`@register_block` line. Parameters listed in `INJECTED` come from the model, not the config.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from zoo.common.errors import ConfigError, unknown
from zoo.common.schema import REQUIRED, signature_hints

# Supplied by the builder from the model (the dataset's class count), never written in a layer.
INJECTED = ("num_classes",)
# Keys every layer entry may have besides its block's parameters.
LAYER_KEYS = ("type", "name", "repeat")

BlockFactory = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class BlockType:
    type: str
    factory: BlockFactory
    params: dict[str, tuple[Any, Any]]  # name -> (type hint, default or REQUIRED)
    doc: str

    @property
    def required(self) -> list[str]:
        return [k for k, (_, default) in self.params.items() if default is REQUIRED]


BLOCKS: dict[str, BlockType] = {}


def register_block(type_name: str) -> Callable[[BlockFactory], BlockFactory]:
    """Register `factory` as the block for config `type: type_name`."""

    def register(factory: BlockFactory) -> BlockFactory:
        if type_name in BLOCKS:
            raise ValueError(f"block type {type_name!r} is registered twice")
        params = {k: v for k, v in signature_hints(factory).items() if k != "name" and k not in INJECTED}
        doc = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
        BLOCKS[type_name] = BlockType(type_name, factory, params, doc)
        return factory

    return register


def block_type(type_name: Any, key: str | None = None) -> BlockType:
    """The registered block for `type_name`, or a ConfigError with a did-you-mean."""
    if not isinstance(type_name, str) or type_name not in BLOCKS:
        raise ConfigError(unknown("block type", type_name, BLOCKS), key=key)
    return BLOCKS[type_name]


def injected(factory: BlockFactory) -> tuple[str, ...]:
    """The model-supplied parameters `factory` takes (see INJECTED)."""
    names = signature_hints(factory)
    return tuple(k for k in INJECTED if k in names)
