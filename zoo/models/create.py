"""`create_model`: a model by name, with trained weights, a new head, no head, or features as outputs.

The Python API in the habits of keras.applications (`include_top`, `pooling`) and timm
(`create_model(name, pretrained..., num_classes=N)`, `features_only`/`out_indices`): it returns a
plain `keras.Model` of stock layers, so Keras's own `fit`, `save` and `export` work on it. Weights
come from a preset, a run directory or a `.keras` file and are matched by layer name, every shape
checked: a classifier whose class count differs starts fresh, anything else that differs is one
line naming the layer and both shapes. The model carries what its weights were trained on:
`model.preprocessing` (image size, channels, mean, std) and `model.class_names`, and what was
loaded in `model.weights_report`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from zoo.common.errors import ZooError, describe_exception, few, unknown
from zoo.models.builder import build_blocks, build_model
from zoo.models.config import ModelConfig, load_model_config, shipped_model_configs
from zoo.models.presets import (WEIGHTS_SUFFIX, Preset, PresetError, file_sha256, get_preset, list_presets,
                                names_a_preset)
from zoo.models.torchvision_weights import preprocessing as torchvision_preprocessing
from zoo.models.torchvision_weights import (check_hash_prefix, classes_in, imagenet_class_names, load_state_dict,
                                            read_state_dict, require_twin)
from zoo.models.torchvision_weights import fetch as fetch_torchvision

if TYPE_CHECKING:
    import keras

HEAD_TYPES = {"global_avg_pool", "global_max_pool", "flatten", "dense", "dropout", "classifier"}
POOLING = ("avg", "max")


class WeightsError(ZooError):
    """Weights that cannot be read, or do not fit the model."""


@dataclasses.dataclass
class WeightsReport:
    """What `create_model` loaded: from where, which layers, and which started fresh and why."""

    source: str
    sha256: str | None
    loaded: list[str]
    fresh: dict[str, str]  # layer -> why it starts from its initialisation
    adapted: dict[str, str] = dataclasses.field(default_factory=dict)  # layer -> how it was adapted

    def describe(self) -> str:
        text = f"weights {self.source}: {len(self.loaded)} layers loaded"
        if self.adapted:
            text += "; adapted: " + "; ".join(f"{name} ({how})" for name, how in self.adapted.items())
        if self.fresh:
            text += "; started fresh: " + "; ".join(f"{name} ({why})" for name, why in self.fresh.items())
        return text


@dataclasses.dataclass(frozen=True)
class _Weights:
    """A weights source opened: the model holding them and what they were trained on."""

    model: Any  # keras.Model
    config: ModelConfig | None
    description: str
    sha256: str | None
    preprocessing: dict[str, Any] | None
    class_names: list[str] | None


def list_models() -> list[str]:
    """The shipped model configs' names: what `create_model` takes."""
    return [path.stem for path in shipped_model_configs()]


def create_model(name: "str | Path | ModelConfig", *, weights: str | Path | None = None, num_classes: int | None = None,
                 include_top: bool = True, pooling: str | None = None, features: Sequence[str] | None = None,
                 input_shape: tuple[int, int, int] | None = None, verbose: bool = True) -> "keras.Model":
    """A Keras model of the config `name` (a shipped model's name, a config path, a mapping or a ModelConfig).

    weights: a preset name (`zoo.list_presets()`), a run directory, a `.keras` or `.weights.h5` file, an
      http(s) or file URL to one with `#sha256=HEX`, `imagenet` for configs with a keras.applications
      twin, or `torchvision` (or a torchvision `.pth` file) for configs with a torchvision twin. The input
      shape and class count default to the weights'.
    num_classes: another class count: the classifier starts fresh, every other layer is loaded.
    include_top: False ends the model at the last block before the head (global pooling, flatten,
      dense, dropout, classifier), as keras.applications does; `pooling` "avg" or "max" then adds
      global pooling.
    features: block names (`conv3`, or `conv3_2` for one block of a repeated group): the model
      outputs each one's activations, in order, as a list.
    verbose: print what was loaded and what started fresh (always in `model.weights_report`).
    """
    if pooling is not None and pooling not in POOLING:
        raise ZooError(f"pooling: expected one of {', '.join(POOLING)} or None, received {pooling!r}")
    if pooling is not None and include_top:
        raise ZooError(f"pooling: applies only with include_top=False, received pooling={pooling!r} with a top")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ZooError(f"num_classes: expected a positive integer, received {num_classes!r}")
    config = load_model_config(name)
    weights = weights if weights is not None else config.weights  # a config may name its own
    source = None
    if weights is not None and str(weights) == "imagenet":
        config = load_model_config({**config.raw, "pretrained": "imagenet"}, config.source)
    elif weights is not None:
        source = open_weights(weights, config.with_overrides(input_shape) if input_shape else config)
        if input_shape is None and source.preprocessing:
            input_shape = (*source.preprocessing["image_size"], source.preprocessing["channels"])
        num_classes = num_classes or len(source.class_names or []) or int(source.model.output_shape[-1])
    if input_shape is not None or num_classes is not None:
        config = config.with_overrides(input_shape, num_classes)

    import keras

    if features is None and include_top:
        model = build_model(config)
    else:
        inputs, blocks = build_blocks(config)
        if features is not None:
            outputs = [_feature_block(config, blocks, feature).output for feature in features]
        else:
            outputs = _backbone_end(config, blocks).output
            if pooling:
                layer = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
                outputs = layer(name=f"{pooling}_pool")(outputs)
        model = keras.Model(inputs, outputs, name=config.name if include_top and not features else
                            f"{config.name}_{'features' if features else 'backbone'}")
    model.weights_report = None
    model.preprocessing, model.class_names = None, None
    if source is not None:
        model.weights_report = transfer_by_name(source, model, head_layers(config))
        model.preprocessing = _for_channels(source.preprocessing, config.input_shape[2])
        model.class_names = source.class_names
        if model.class_names and len(model.class_names) != config.num_classes:
            model.class_names = None  # a new head's classes are the user's own
        if verbose:
            print(model.weights_report.describe())
    return model


SOURCES = ("a preset, a run directory, a .keras, .weights.h5 or torchvision .pth file, a URL#sha256=HEX of one, "
           "or torchvision")


def _for_channels(preprocessing: dict[str, Any] | None, channels: int) -> dict[str, Any] | None:
    """The weights' preprocessing for a model with `channels` inputs: mean and std averaged (to one
    channel) or repeated (from one), as the first convolution was adapted."""
    if not preprocessing or preprocessing["channels"] == channels:
        return preprocessing

    def fit(values: list[float]) -> list[float]:
        return [float(np.mean(values))] * channels if len(values) != channels else list(values)
    return {**preprocessing, "channels": channels, "mean": fit(preprocessing["mean"]), "std": fit(preprocessing["std"])}


def open_weights(weights: str | Path, config: ModelConfig | None = None) -> _Weights:
    """The model holding `weights`, loaded safely: a preset name, a run directory, a .keras file, a
    .weights.h5 file (of `config`'s architecture), an http(s)/file URL to one of those files with
    `#sha256=HEX`, fetched once by Keras's `get_file`, checked and cached, or `torchvision` (the config's
    torchvision twin's ImageNet weights, fetched the same way) or a torchvision `.pth` file."""
    text = str(weights)
    if text == "torchvision":
        return _open_torchvision(fetch_torchvision(_required(config, text)), config)
    if "://" in text:
        return open_weights(_fetch(text), config)
    path = Path(text)
    if names_a_preset(text):
        return _open_preset(get_preset(text))  # an unknown name gets a did-you-mean
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise WeightsError(f"weights: expected {SOURCES}; received {path}, a directory without model.keras")
        path = path / "model.keras"
    if path.is_file() and path.suffix == ".pth":
        return _open_torchvision(path, _required(config, text))
    if not path.is_file() or not (path.suffix == ".keras" or path.name.endswith(WEIGHTS_SUFFIX)):
        what = "no such file" if not path.exists() else f"a {path.suffix or 'suffix-less'} file"
        raise WeightsError(f"weights: expected {SOURCES} (presets: {', '.join(list_presets()) or 'none'}); "
                           f"received {text!r} ({what})")
    if path.name.endswith(WEIGHTS_SUFFIX):
        return _open_weights_file(path, config)
    from zoo.models.saving import load_keras_model, read_metadata, why_unreadable

    model = load_keras_model(path)
    try:
        metadata = read_metadata(path)
    except Exception as error:  # zipfile's errors, for an archive Keras could read
        raise WeightsError(f"weights: cannot read {path} ({why_unreadable(path, error)})") from None
    preprocessing = {k: metadata[k] for k in ("image_size", "channels", "mean", "std")} if metadata else None
    return _Weights(model, None, str(path), file_sha256(path), preprocessing, metadata.get("class_names"))


def _required(config: ModelConfig | None, weights: str) -> ModelConfig:
    if config is None:
        raise WeightsError(f"weights: {weights} holds weights only; name the model they belong to")
    return config


def _open_torchvision(path: Path, config: ModelConfig) -> _Weights:
    """A torchvision state_dict (`.pth`) read into `config`'s architecture (zoo.models.torchvision_weights)."""
    twin = require_twin(config)
    sha256 = file_sha256(path)
    check_hash_prefix(path, sha256, config)
    state = read_state_dict(path)
    saved = config.with_overrides(num_classes=classes_in(state))
    model = build_model(saved)
    load_state_dict(model, saved, state)
    names = imagenet_class_names()  # a .pth of another class count is someone's fine-tuning: classes unknown
    return _Weights(model, saved, f"torchvision {twin.model} ({path.name})", sha256, torchvision_preprocessing(config),
                    names if saved.num_classes == len(names) else None)


def _fetch(url: str) -> Path:
    """The file at `url` (which ends in #sha256=HEX), downloaded once into Keras's cache and checked."""
    import keras

    address, _, fragment = url.partition("#")
    digest = fragment.removeprefix("sha256=")
    if not fragment.startswith("sha256=") or len(digest) != 64:
        raise WeightsError(f"weights: a URL needs its file's hash as #sha256=<64 hex digits>, received {url!r}")
    name = address.rstrip("/").rsplit("/", 1)[-1]
    try:
        return Path(keras.utils.get_file(f"{digest[:12]}-{name}", address, file_hash=digest,
                                         cache_subdir="zoo_weights"))
    except Exception as error:  # the download surfaces as URLError, HTTPError, OSError or ValueError (the hash)
        raise WeightsError(f"weights: cannot fetch {address} ({describe_exception(error)})") from None


def _open_weights_file(path: Path, config: ModelConfig | None) -> _Weights:
    """A .weights.h5 file holds no architecture: it is read into `config`'s, with the class count and
    input channels its classifier and first convolution were saved with."""
    config = _required(config, str(path))
    import h5py

    try:
        with h5py.File(path, "r") as weights:
            shapes = {name: weights[f"layers/{name}/vars/0"].shape for name in weights["layers"]
                      if f"layers/{name}/vars/0" in weights}
    except Exception as error:
        raise WeightsError(f"weights: cannot read {path} ({describe_exception(error)})") from None
    dense = sorted((name for name in shapes if name == "dense" or name.startswith("dense_")),
                   key=lambda name: int(name.rpartition("_")[2]) if name != "dense" else 0)
    classes = shapes[dense[-1]][-1] if dense else config.num_classes
    channels = shapes["conv2d"][2] if "conv2d" in shapes else config.input_shape[2]
    saved = config.with_overrides((*config.input_shape[:2], channels), classes)
    model = build_model(saved)
    try:
        model.load_weights(path)
    except Exception as error:
        raise WeightsError(f"weights: {path} does not fit {config.name} ({describe_exception(error)})") from None
    return _Weights(model, saved, str(path), file_sha256(path), None, None)


def _open_preset(preset: Preset) -> _Weights:
    path = preset.weights_file()
    model = build_model(preset.model_config)
    try:
        model.load_weights(path)
    except Exception as error:
        raise PresetError(f"preset {preset.name!r}: cannot load {path} ({describe_exception(error)})") from None
    return _Weights(model, preset.model_config, f"{preset.name} (sha256 {preset.sha256[:12]})", preset.sha256,
                    preset.preprocessing, preset.class_names)


def transfer_by_name(source: _Weights, target: "keras.Model", head: set[str],
                     class_names: Sequence[str] | None = None) -> WeightsReport:
    """Copies each weighted layer of `target` from the layer of the same name in `source.model`.

    Every pair is checked before anything is copied. A head layer (the classifier) whose shapes
    differ starts fresh, with the reason. The first convolution, when only its input channels
    differ, is adapted as timm's `adapt_input_conv` does (summed over channels for 3 -> 1, repeated
    and rescaled for 1 -> 3). Any other missing layer or differing shape is an error naming the
    layer and both shapes. Given the data's `class_names`, a head whose weights were trained on other
    classes starts fresh even when the counts agree: its rows belong to the weights' classes.
    """
    by_name = {layer.name: layer for layer in source.model.layers if layer.weights}
    first = next((layer for layer in target.layers if layer.weights), None)
    pairs, fresh, adapted = [], {}, {}
    theirs_named = list(source.class_names or [])
    other_classes = bool(class_names and theirs_named and list(class_names) != theirs_named)
    for layer in target.layers:
        if not layer.weights:
            continue
        if other_classes and layer.name in head:
            fresh[layer.name] = f"the data's classes ({few(class_names)}) are not the weights' ({few(theirs_named)})"
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        theirs = by_name.get(layer.name)
        if theirs is None:
            if layer.name in head:
                fresh[layer.name] = f"the weights from {source.description} have no such layer"
                continue
            raise WeightsError(f"weights from {source.description} do not fit {target.name}: they have no layer "
                               f"{layer.name!r} (shapes {shapes}); a model of another architecture?")
        values = theirs.get_weights()
        their_shapes = [tuple(w.shape) for w in theirs.weights]
        if their_shapes != shapes and layer is first and _differ_in_input_channels(shapes, their_shapes):
            values = [adapt_input_channels(values[0], shapes[0][2]), *values[1:]]
            adapted[layer.name] = (f"{their_shapes[0][2]} -> {shapes[0][2]} input channels "
                                   f"({'summed' if shapes[0][2] < their_shapes[0][2] else 'repeated and rescaled'})")
        elif their_shapes != shapes:
            if layer.name in head:
                fresh[layer.name] = (f"{shapes[0][-1]} classes; the weights have {their_shapes[0][-1]}")
                continue
            raise WeightsError(f"weights from {source.description} do not fit {target.name}: layer {layer.name!r} "
                               f"has shapes {shapes} in the model, {their_shapes} in the weights")
        pairs.append((layer, values))
    for layer, values in pairs:
        layer.set_weights(values)
    return WeightsReport(source.description, source.sha256, [layer.name for layer, _ in pairs], fresh, adapted)



def _differ_in_input_channels(shapes: list[tuple], theirs: list[tuple]) -> bool:
    """A convolution kernel [h, w, in, out] that differs from `theirs` in `in` alone."""
    return (len(shapes) == len(theirs) and len(shapes[0]) == 4 and shapes[1:] == theirs[1:]
            and shapes[0][:2] + shapes[0][3:] == theirs[0][:2] + theirs[0][3:])


def adapt_input_channels(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A conv kernel [h, w, in, out] for `channels` inputs (timm's adapt_input_conv): summed over its
    inputs for one channel, else tiled to `channels` and scaled by in / channels, so an image whose
    channels are alike gives the same response."""
    have = kernel.shape[2]
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    repeats = -(-channels // have)
    return np.tile(kernel, (1, 1, repeats, 1))[:, :, :channels] * (have / channels)


def head_layers(config: ModelConfig) -> set[str]:
    """The Keras layer names of the classifier blocks: those that change with the class count."""
    return {name for spec in config.layers if spec.type == "classifier" for name, _ in spec.expand()}


def _backbone_end(config: ModelConfig, blocks: list) -> Any:
    """The last block before the head: the blocks at the end whose types are all head types are cut."""
    end = len(blocks)
    while end > 0 and blocks[end - 1].spec.type in HEAD_TYPES:
        end -= 1
    if end == 0:
        raise ZooError(f"include_top=False: {config.name} has no block before its head")
    return blocks[end - 1]


def _feature_block(config: ModelConfig, blocks: list, name: str) -> Any:
    """The block called `name`, or the last block of the config layer called `name` (a repeated group)."""
    for block in blocks:
        if block.name == name:
            return block
    group = [block for block in blocks if block.spec.name == name]
    if group:
        return group[-1]
    names = {block.name for block in blocks} | {block.spec.name for block in blocks}
    raise ZooError(f"features: {unknown(f'block of {config.name}', name, names)}")
