"""Model config files: `base:` inheritance, overrides and strict validation.

A model config is a mapping with `name`, `input_shape`, `num_classes` and `layers` (a list of
blocks, each `{type: ..., name: ..., repeat: ..., **block parameters}`), and optionally
`defaults` (parameters applied to every block that takes them), `keras_application` (the
keras.applications twin, for weight transfer), `pretrained: imagenet` and `torchvision` (the
torchvision twin whose ImageNet weights fit, zoo.models.torchvision_weights).

`base: other.yaml` (a path relative to the file, or a shipped model's name) starts from another
config; the keys beside it override. `layers` given as a mapping patches layers by name
(`layers: {conv1: {kernel_size: 5}}`), which is how experiments, ablations and `--set` change a
model without copying it.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Literal, Mapping

from zoo.common.errors import ConfigError, unknown
from zoo.common.schema import REQUIRED, PositiveInt, build_dataclass, check
from zoo.common.shipped import config_path, shipped_configs
from zoo.common.yamlfiles import load_yaml
from zoo.models.blocks import BLOCKS, block_type
from zoo.models.blocks.registry import LAYER_KEYS

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def layer_name(entry: Any, index: int) -> str:
    """A layer's name: its `name`, or one derived from its type and position (`max_pool_3`)."""
    if isinstance(entry, Mapping):
        return str(entry.get("name") or f"{entry.get('type', 'layer')}_{index}")
    return f"layer_{index}"


def merge(base: Mapping[str, Any], override: Mapping[str, Any], source: str | None = None) -> dict:
    """`override` over `base`: keys replace, `defaults` merge, a `layers` mapping patches by name."""
    merged = dict(base)
    for key, value in override.items():
        if key == "layers" and isinstance(value, Mapping):
            merged["layers"] = patch_layers(base.get("layers"), value, source)
        elif key == "defaults" and isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def patch_layers(layers: Any, patches: Mapping[str, Any], source: str | None = None) -> list:
    """A copy of `layers` with each named layer's keys updated from `patches`."""
    if not isinstance(layers, list):
        raise ConfigError("a mapping of layer patches needs a base config with a list of layers", source=source,
                          key="layers")
    layers = [dict(entry) if isinstance(entry, Mapping) else entry for entry in layers]
    names = [layer_name(entry, i) for i, entry in enumerate(layers)]
    for name, patch in patches.items():
        if name not in names:
            raise ConfigError(unknown("layer", name, names), source=source, key=f"layers.{name}")
        if not isinstance(patch, Mapping):
            raise ConfigError(f"expected a mapping of keys to change, received {patch!r}", source=source,
                              key=f"layers.{name}")
        layers[names.index(name)].update(patch)
    return layers


def resolve_bases(data: Any, source: str, directory: Path | None, chain: tuple[str, ...] = ()) -> dict:
    """`data` with its chain of `base:` files merged in, from the root down."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of keys, received {type(data).__name__}", source=source)
    if "base" not in data:
        return dict(data)
    reference = data["base"]
    if not isinstance(reference, str):
        raise ConfigError(f"expected a config path or model name, received {reference!r}", source=source, key="base")
    path = config_path(reference, "model", directory).resolve()
    if str(path) in chain or str(path) == source:
        raise ConfigError(f"circular base: {' -> '.join(Path(c).name for c in (*chain, source, str(path)))}",
                          source=source, key="base")
    if not path.exists():
        raise ConfigError(f"base config {reference!r} not found (looked for {path})", source=source, key="base")
    parent = resolve_bases(load_yaml(path), str(path), path.parent, (*chain, source))
    rest = {k: v for k, v in data.items() if k != "base"}
    return merge(parent, rest, source)


# ----------------------------------------------------------------------------- validation


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One entry of `layers`, validated: its block's arguments with every default filled in."""

    type: str
    name: str
    repeat: int
    args: dict[str, Any]
    key: str  # where it is in the file, e.g. "layers[3]"

    def expand(self) -> list[tuple[str, dict[str, Any]]]:
        """(block name, arguments) for each repeat: NAME_1, NAME_2, ...; strides apply to the first only."""
        if self.repeat == 1:
            return [(self.name, self.args)]
        later = {**self.args, "strides": 1} if "strides" in self.args else self.args
        return [(f"{self.name}_{i}", self.args if i == 1 else later) for i in range(1, self.repeat + 1)]


@dataclasses.dataclass(frozen=True)
class TorchvisionTwin:
    """The torchvision model whose ImageNet weights fit this config layer for layer (zoo.models.torchvision_weights)."""

    model: str   # torchvision's name for it: resnet18, vgg16, ...
    url: str     # its IMAGENET1K_V1 file, whose name ends in the first hex digits of the file's sha256
    top1: float  # torchvision's published ImageNet-1K accuracies (%), resize 256, centre crop 224
    top5: float
    norm_epsilon: float = 1e-5  # its batch norm's epsilon, which the state_dict does not hold
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # the normalisation its weights expect
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class _ModelFile:
    name: str
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt]
    num_classes: PositiveInt
    layers: list[Any]
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    keras_application: str | None = None
    pretrained: Literal["imagenet"] | None = None
    weights: str | None = None  # trained weights to start from (zoo.models.create.open_weights); imagenet: pretrained
    description: str = ""
    torchvision: TorchvisionTwin | None = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    layers: tuple[LayerSpec, ...]
    keras_application: str | None
    pretrained: str | None
    description: str
    source: str
    raw: dict[str, Any]  # the merged mapping, saved beside runs as the resolved config
    weights: str | None = None  # a preset, run directory, .keras, .weights.h5 or .pth file, URL#sha256=..., imagenet
    torchvision: TorchvisionTwin | None = None  # or torchvision: the twin whose weights fit

    def with_overrides(self, input_shape: tuple[int, ...] | None = None,
                       num_classes: int | None = None) -> "ModelConfig":
        """The same model for another input shape or class count (the trainer takes them from the data)."""
        raw = dict(self.raw)
        if input_shape is not None:
            raw["input_shape"] = list(input_shape)
        if num_classes is not None:
            raw["num_classes"] = num_classes
        return validate_model(raw, self.source)


def _layer_spec(entry: Any, index: int, defaults: Mapping[str, Any]) -> LayerSpec:
    key = f"layers[{index}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"expected a mapping with a 'type', received {entry!r}", key=key)
    if "type" not in entry:
        raise ConfigError(f"missing required key 'type' (one of: {', '.join(sorted(BLOCKS))})", key=key)
    block = block_type(entry["type"], key=f"{key}.type")
    allowed = set(LAYER_KEYS) | set(block.params)
    for name in entry:
        if name not in allowed:
            raise ConfigError(unknown(f"key for a {block.type} block:", name, allowed), key=f"{key}.{name}")
    name = layer_name(entry, index)
    if not _NAME.match(name):
        raise ConfigError(f"expected a name of letters, digits and '_' starting with a letter, received {name!r}",
                          key=f"{key}.name")
    repeat = check(entry.get("repeat", 1), PositiveInt, key=f"{key}.repeat")
    args = {}
    for param, (hint, default) in block.params.items():
        if param in entry:
            args[param] = check(entry[param], hint, key=f"{key}.{param}")
        elif param in defaults:
            args[param] = check(defaults[param], hint, key=f"defaults.{param}")
        elif default is REQUIRED:
            raise ConfigError(f"missing required key {param!r} for a {block.type} block", key=key)
        else:
            args[param] = default
    return LayerSpec(block.type, name, repeat, args, key)


def validate_model(raw: Mapping[str, Any], source: str) -> ModelConfig:
    """A ModelConfig from a merged mapping; any problem is a ConfigError naming `source` and the key."""
    try:
        top = build_dataclass(_ModelFile, raw)
        every_param = {p for block in BLOCKS.values() for p in block.params}
        for key in top.defaults:
            if key not in every_param:
                raise ConfigError(unknown("block parameter", key, every_param), key=f"defaults.{key}")
        if not top.layers:
            raise ConfigError("expected at least one layer, received an empty list", key="layers")
        layers = tuple(_layer_spec(entry, i, top.defaults) for i, entry in enumerate(top.layers))
        seen: dict[str, str] = {}
        for spec in layers:
            for name, _ in spec.expand():
                if name in seen:
                    raise ConfigError(f"block name {name!r} is used twice (also by {seen[name]})", key=spec.key)
                seen[name] = spec.key
        if top.weights == "imagenet":
            top = dataclasses.replace(top, pretrained="imagenet", weights=None)
        if top.pretrained and not top.keras_application:
            raise ConfigError("pretrained weights need 'keras_application' (the model whose weights to load)",
                              key="pretrained")
    except ConfigError as error:
        raise error.located(source) from None
    return ModelConfig(top.name, tuple(top.input_shape), top.num_classes, layers, top.keras_application,
                       top.pretrained, top.description, source, dict(raw), top.weights, top.torchvision)


def load_model_config(config: "str | Path | Mapping[str, Any] | ModelConfig",
                      source: str | None = None) -> ModelConfig:
    """A validated model config from a file path, a shipped model's name or a mapping."""
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, Mapping):
        source = source or "<mapping>"
        return validate_model(resolve_bases(config, source, Path.cwd()), source)
    path = config_path(config, "model")
    raw = resolve_bases(load_yaml(path), str(path), path.parent)
    return validate_model(raw, str(path))


def shipped_model_configs() -> list[Path]:
    """Every model config in the package's configs/models, sorted by name: what tests and `compare` loop over."""
    return shipped_configs("model")
