"""torchvision's ImageNet weights in the zoo's Keras models: fetched or read, mapped to layers by name,
every shape checked.

A model config whose layout matches a torchvision model names that twin (`torchvision: {model, url,
top1, top5}`). `create_model(NAME, weights="torchvision")` fetches the twin's file once through
Keras's `get_file` into its cache and checks the sha256 prefix torchvision puts in the file's name,
as torch.hub does; `weights="PATH.pth"` reads a file placed by hand. Reading a `.pth` needs torch
(the `torch` extra), through `torch.load(weights_only=True)`: tensors only, no pickled code runs.

torchvision's module names map to the zoo's layers by the model's structure:
- ResNet: `conv1`/`bn1` are the stem block's `_conv`/`_bn`; `layerG.B.convK`/`bnK` are block B of the
  G-th residual group's `_K_conv`/`_K_bn`, `downsample.0`/`.1` its shortcut's `_0_conv`/`_0_bn`; `fc`
  is the classifier.
- GoogLeNet: `convN.conv`/`.bn` are block convN's `_conv`/`_bn`; an inception module's `branch1`,
  `branch2.0`/`.1`, `branch3.0`/`.1` and `branch4.1` are its `_1x1`, `_3x3_reduce`/`_3x3`,
  `_5x5_reduce`/`_5x5` and `_pool_proj`; `fc` is the classifier. Its auxiliary classifiers, used in
  training only, are left out.
- VGG and AlexNet (`features.I`, `classifier.J`, one chain of layers): the convolutions, batch norms
  and linear layers, each kind in the state_dict's order, are the zoo's Conv2D, BatchNormalization and
  Dense layers in theirs.
Kernels go from OIHW to HWIO, linear weights are transposed, and the first linear layer after a
flatten has its inputs reordered from torchvision's channels-first (C, H, W) to Keras's (H, W, C).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from zoo.common.errors import ZooError, describe_exception
from zoo.models.config import ModelConfig

if TYPE_CHECKING:
    import keras

# torchvision's ImageNet evaluation: the short side resized to 256, then the centre 224 crop
RESIZE, CROP = 256, 224
# torchvision modules a config leaves out: GoogLeNet's auxiliary classifiers, used in training only
LEFT_OUT = re.compile(r"^aux\d\.")
HASH_PREFIX = re.compile(r"-([0-9a-f]{8,})\.pth$")
# Keras's BatchNormalization variables, as torch's BatchNorm2d names its tensors
BATCH_NORM = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


class TorchvisionWeightsError(ZooError):
    """A torchvision weights file that cannot be fetched, read or fitted."""


def twin_configs() -> list[str]:
    """The shipped model configs with a torchvision twin."""
    from zoo.models.config import load_model_config, shipped_model_configs

    return [path.stem for path in shipped_model_configs() if load_model_config(path).torchvision]


def preprocessing(config: ModelConfig) -> dict:
    """What the twin's weights expect: the twin's mean and std at the config's size, and torchvision's
    evaluation resize: the short side to 256, then the centre crop (zoo.data.preprocess applies it); at
    another input size the short side keeps the crop's share of it, 224/256, as torchvision's references
    scale it."""
    twin = require_twin(config)
    size = list(config.input_shape[:2])
    return {"image_size": size, "channels": 3, "mean": list(twin.mean), "std": list(twin.std),
            "resize": round(max(size) * RESIZE / CROP)}


def imagenet_class_names() -> list[str]:
    """ImageNet-1k's 1,000 class names in class-index order, as torchvision's weights name them."""
    return (Path(__file__).parent / "imagenet_classes.txt").read_text().splitlines()


def fetch(config: ModelConfig) -> Path:
    """The twin's weights file, downloaded once into Keras's cache (`check_hash_prefix` checks it)."""
    import keras

    twin = require_twin(config)
    name = twin.url.rsplit("/", 1)[-1]
    try:
        path = Path(keras.utils.get_file(name, twin.url, cache_subdir="zoo_weights"))
    except Exception as error:  # URLError, HTTPError, OSError: offline, or the file moved
        raise TorchvisionWeightsError(
            f"weights=torchvision: cannot fetch {twin.url} ({describe_exception(error)}); offline, download it "
            f"elsewhere and pass weights='PATH/{name}', or place it in ~/.keras/zoo_weights/") from None
    return path


def check_hash_prefix(path: Path, sha256: str, config: ModelConfig) -> None:
    """torchvision names its files NAME-HASH.pth with the first hex digits of their sha256 (`sha256`, given):
    the twin's own file that does not match its name (truncated, damaged, replaced) is refused. Other
    files, the user's own, are taken as they are."""
    name = require_twin(config).url.rsplit("/", 1)[-1]
    match = HASH_PREFIX.search(name)
    if path.name == name and match and not sha256.startswith(match.group(1)):
        raise TorchvisionWeightsError(f"weights: {path} does not match the sha256 prefix {match.group(1)} in its "
                                      f"name (its sha256 is {sha256[:16]}...): a damaged or partial file")


def require_twin(config: ModelConfig):
    if config.torchvision is None:
        raise TorchvisionWeightsError(f"weights: {config.name} has no torchvision twin; the configs that have one: "
                                      f"{', '.join(twin_configs())}")
    return config.torchvision


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a `.pth` file, as NumPy arrays, read with weights_only=True."""
    try:
        import torch
    except ImportError:
        raise TorchvisionWeightsError(f"weights: reading {path} needs PyTorch, which is not installed: pip install "
                                      "torch (the zoo's `torch` extra: pip install '.[torch]' in its checkout)"
                                      ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file, or one holding more than tensors
        raise TorchvisionWeightsError(f"weights: cannot read {path} as a PyTorch state_dict "
                                      f"({describe_exception(error)})") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        keys = ", ".join(map(str, list(state)[:5])) if isinstance(state, dict) else ""
        raise TorchvisionWeightsError(
            f"weights: expected a state_dict (parameter names to tensors) in {path}, received a "
            f"{type(state).__name__}{' with keys ' + keys if keys else ''}; a training checkpoint? save its "
            "model's state_dict() alone")
    return {name: tensor.detach().float().numpy() if tensor.is_floating_point() else tensor.numpy()
            for name, tensor in state.items()}


Modules = dict[str, dict[str, np.ndarray]]  # torch module -> its tensors by short name, in the file's order


def _modules(state: dict[str, np.ndarray]) -> Modules:
    modules: Modules = {}
    for name, value in state.items():
        module, _, tensor = name.rpartition(".")
        if tensor != "num_batches_tracked" and not LEFT_OUT.match(module):  # BatchNorm's step counter: unused
            modules.setdefault(module, {})[tensor] = value
    return modules


def _resnet_names(config: ModelConfig, model: "keras.Model", modules: Modules) -> dict[str, str]:
    stem = config.layers[0].name
    groups = [[name for name, _ in spec.expand()] for spec in config.layers if spec.type.startswith("residual")]
    head = next(name for spec in config.layers if spec.type == "classifier" for name, _ in spec.expand())
    names = {}
    for module in modules:
        if module in ("conv1", "bn1"):
            names[module] = f"{stem}_{'conv' if module == 'conv1' else 'bn'}"
        elif module == "fc":
            names[module] = head
        elif match := re.fullmatch(r"layer(\d+)\.(\d+)\.(conv|bn)(\d+)", module):
            group, block, kind, index = match.groups()
            names[module] = f"{_block(groups, group, block, module)}_{index}_{kind}"
        elif match := re.fullmatch(r"layer(\d+)\.(\d+)\.downsample\.([01])", module):
            group, block, index = match.groups()
            names[module] = f"{_block(groups, group, block, module)}_0_{'conv' if index == '0' else 'bn'}"
    return names


def _block(groups: list[list[str]], group: str, block: str, module: str) -> str:
    try:
        return groups[int(group) - 1][int(block)]
    except IndexError:
        raise TorchvisionWeightsError(f"weights: torchvision's {module} has no block in this config "
                                      f"({len(groups)} residual groups)") from None


INCEPTION_BRANCHES = {"branch1": "1x1", "branch2.0": "3x3_reduce", "branch2.1": "3x3", "branch3.0": "5x5_reduce",
                      "branch3.1": "5x5", "branch4.1": "pool_proj"}


def _googlenet_names(config: ModelConfig, model: "keras.Model", modules: Modules) -> dict[str, str]:
    head = next(name for spec in config.layers if spec.type == "classifier" for name, _ in spec.expand())
    names = {}
    for module in modules:
        if module == "fc":
            names[module] = head
        elif match := re.fullmatch(r"(conv\d+)\.(conv|bn)", module):
            names[module] = f"{match.group(1)}_{match.group(2)}"
        elif match := re.fullmatch(r"(inception\w+)\.(branch1|branch\d\.\d)\.(conv|bn)", module):
            block, branch, kind = match.groups()
            if branch in INCEPTION_BRANCHES:
                names[module] = f"{block}_{INCEPTION_BRANCHES[branch]}_{kind}"
    return names


def _kind(tensors: dict[str, np.ndarray]) -> str:
    if "running_mean" in tensors:
        return "BatchNormalization"
    return "Conv2D" if tensors["weight"].ndim == 4 else "Dense"


def _sequential_names(config: ModelConfig, model: "keras.Model", modules: Modules) -> dict[str, str]:
    import keras

    names = {}
    for kind in ("Conv2D", "BatchNormalization", "Dense"):
        theirs = [module for module, tensors in modules.items() if _kind(tensors) == kind]
        ours = [layer.name for layer in model.layers if isinstance(layer, getattr(keras.layers, kind))]
        if len(theirs) != len(ours):
            raise TorchvisionWeightsError(f"weights: torchvision's model has {len(theirs)} {kind} layers, "
                                          f"{config.name} has {len(ours)}")
        names.update(zip(theirs, ours))
    return names


FAMILIES: dict[str, Callable[[ModelConfig, "keras.Model", Modules], dict[str, str]]] = {
    "resnet": _resnet_names, "vgg": _sequential_names, "alexnet": _sequential_names, "googlenet": _googlenet_names}


def keras_names(config: ModelConfig, model: "keras.Model", modules: Modules) -> dict[str, str]:
    """torch module -> Keras layer name, for every module of the state_dict."""
    twin = require_twin(config)
    family = next((f for f in FAMILIES if twin.model.startswith(f)), None)
    if family is None:
        raise TorchvisionWeightsError(f"weights: no mapping for torchvision's {twin.model} (known: "
                                      f"{', '.join(FAMILIES)})")
    names = FAMILIES[family](config, model, modules)
    unmapped = [module for module in modules if module not in names]
    if unmapped:
        raise TorchvisionWeightsError(f"weights: torchvision's {', '.join(unmapped[:3])} has no layer in {config.name}")
    return names


def _flattened_from(layer: "keras.layers.Layer") -> tuple[int, int, int] | None:
    """(H, W, C) of the map a Dense layer's input was flattened from, through any dropout; None otherwise."""
    import keras

    producer = layer.input._keras_history.operation
    while isinstance(producer, keras.layers.Dropout):
        producer = producer.input._keras_history.operation
    if isinstance(producer, keras.layers.Flatten) and len(producer.input.shape) == 4:
        return tuple(producer.input.shape[1:])
    return None


def _converted(layer: "keras.layers.Layer", tensors: dict[str, np.ndarray], module: str,
               epsilon: float) -> list[tuple]:
    """(Keras variable, value) for each of `layer`'s variables, from torch `module`'s tensors."""
    import keras

    if isinstance(layer, keras.layers.BatchNormalization):
        if abs(layer.epsilon - epsilon) > 1e-12:
            raise TorchvisionWeightsError(f"weights: {layer.name} has epsilon {layer.epsilon}; torchvision's batch "
                                          f"norm there uses {epsilon} (set norm_epsilon in the config)")
        return [(variable, tensors[BATCH_NORM[variable.path.rsplit("/", 1)[-1]]]) for variable in layer.weights]
    weight = tensors["weight"]
    if isinstance(layer, keras.layers.Conv2D):
        kernel = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif isinstance(layer, keras.layers.Dense):
        kernel = weight.T
        flattened = _flattened_from(layer)
        if flattened and weight.shape[1] == np.prod(flattened):  # torch flattened (C, H, W); Keras (H, W, C)
            height, width, channels = flattened
            kernel = weight.reshape(-1, channels, height, width).transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])
    else:
        raise TorchvisionWeightsError(f"weights: torchvision's {module} maps to {layer.name}, a "
                                      f"{type(layer).__name__}, which takes no converted weights")
    if ("bias" in tensors) != bool(getattr(layer, "use_bias", False)):
        raise TorchvisionWeightsError(f"weights: torchvision's {module} {'has' if 'bias' in tensors else 'has no'} "
                                      f"bias, {layer.name} {'has none' if 'bias' in tensors else 'has one'}")
    return [(layer.kernel, kernel), *([(layer.bias, tensors["bias"])] if "bias" in tensors else [])]


def load_state_dict(model: "keras.Model", config: ModelConfig, state: dict[str, np.ndarray]) -> None:
    """Copies a torchvision state_dict into `model` (built from `config`), every shape checked before anything
    is copied."""
    modules = _modules(state)
    names = keras_names(config, model, modules)
    epsilon = require_twin(config).norm_epsilon
    assignments = []
    for module, layer_name in names.items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise TorchvisionWeightsError(f"weights: torchvision's {module} maps to {layer_name}, which "
                                          f"{config.name} does not have") from None
        for variable, value in _converted(layer, modules[module], module, epsilon):
            if tuple(variable.shape) != value.shape:
                raise TorchvisionWeightsError(f"weights: torchvision's {module} gives {layer.name} a tensor of shape "
                                              f"{value.shape}, it has {tuple(variable.shape)}")
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value)


def classes_in(state: dict[str, np.ndarray]) -> int:
    """The class count of a state_dict: the rows of its last linear layer."""
    linear = [tensors["weight"] for tensors in _modules(state).values()
              if "weight" in tensors and tensors["weight"].ndim == 2]
    if not linear:
        raise TorchvisionWeightsError("weights: the state_dict has no linear layer (a classifier's weights)")
    return int(linear[-1].shape[0])
