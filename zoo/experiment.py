"""Experiment configs: the `model`, `data`, `train` and `export` sections, their defaults and `--set`.

Every default lives in the dataclasses below, nowhere else. A file is checked strictly (unknown
keys get a did-you-mean), then each `--set dotted.key=value` is applied with the same checks,
and the resolved experiment, model included, is what a run saves as `config.yaml`.
The `model` section is a model config mapping: usually `base: NAME_OR_PATH` plus overrides, such
as `layers: {conv1: {kernel_size: 5}}` (see zoo.models.config).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml

from zoo.common.errors import ConfigError, ZooError, unknown
from zoo.common.schema import (Fraction, Max, Min, NonNegativeFloat, NonNegativeInt, OpenFraction, PositiveFloat,
                               PositiveInt, Probability, build_dataclass)
from zoo.common.shipped import config_path
from zoo.common.yamlfiles import StrictLoader, load_yaml
from zoo.models.config import ModelConfig, layer_name, resolve_bases, validate_model


@dataclasses.dataclass(frozen=True)
class RandAugmentConfig:
    """RandAugment (Cubuk et al. 2019): `num_ops` operations drawn from Keras's eleven, at `magnitude` of 10."""

    num_ops: PositiveInt = 2
    magnitude: Annotated[float, Min(0), Max(10)] = 9.0  # timm's `rand-m9`: 9 of 10


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation, on whole batches (zoo.data.augment); every key off by default."""

    random_crop_padding: NonNegativeInt = 0  # pad by this many pixels, then crop back at random
    horizontal_flip: bool = False
    rand_augment: RandAugmentConfig | None = None  # e.g. {num_ops: 2, magnitude: 9}
    random_erasing: Probability = 0.0        # each image's chance of a random rectangle replaced by noise
    mixup_alpha: NonNegativeFloat = 0.0      # MixUp's Beta(alpha, alpha) mixing weight; 0: off
    cutmix_alpha: Probability = 0.0          # CutMix's, likewise (Keras's takes up to 1, timm's default); both set:
                                             # one of the two per batch, as timm


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "zoo_patterns"               # a TFDS dataset name (`mnist`, `cifar10`, ...)
    folder: str | None = None                # or a folder of your own images: FOLDER/SPLIT/CLASS/*.png|jpg
    train_split: str = "train"               # TFDS slicing works: `train[:90%]`
    eval_split: str = "test"
    data_dir: str | None = None              # None: TFDS's own default, so TFDS_DATA_DIR works
    manual_dir: str | None = None            # where manually downloaded archives are
    download: bool = False                   # let TFDS download and prepare the dataset if missing
    image_size: tuple[PositiveInt, PositiveInt] | None = None  # None: the dataset's size, else the model's
    mean: tuple[float, ...] = (0.0,)         # per-channel, on pixels scaled to [0, 1]
    std: tuple[PositiveFloat, ...] = (1.0,)
    augment: AugmentConfig = AugmentConfig()
    cache: Literal["auto", "memory", "none"] = "auto"  # auto: decoded uint8 in memory when it fits
    shuffle_buffer: PositiveInt | None = None  # streaming only (in memory, every epoch is a full shuffle)
    bad_images: Literal["fail", "skip"] = "fail"  # a folder's unreadable files: stop before training, or leave out
    classes: tuple[str, ...] | None = None   # keep these classes only, relabelled in this order
    examples_per_class: PositiveInt | None = None  # the training split's first N images of each class
    channels: Literal[1, 3] | None = None    # convert images to grey or RGB (a folder is read as RGB)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    learning_rate: PositiveFloat = 0.1
    momentum: Fraction = 0.9                 # SGD only
    nesterov: bool = False                   # SGD only
    weight_decay: NonNegativeFloat = 0.0     # decoupled, as Keras applies it (AdamW's default is 0.004)
    decay_norm_and_bias: bool = True         # false: no weight decay on biases and batch norm's gamma and beta


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: Literal["constant", "step", "cosine", "one_cycle"] = "cosine"
    warmup_epochs: NonNegativeFloat = 0.0    # linear warm-up from 0 (one_cycle: from lr/25; 0 means 30%)
    milestones: tuple[PositiveInt, ...] = ()  # step: epochs after which the rate is multiplied by gamma
    gamma: PositiveFloat = 0.1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: PositiveInt = 10
    batch_size: PositiveInt = 128
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    label_smoothing: Fraction = 0.0
    ema_momentum: OpenFraction | None = None   # e.g. 0.999: evaluate and export an average of the weights
    eval_tta: Literal["flip"] | None = None    # also score the mean of each image's and its mirror's probabilities
    seed: int = 0
    xla: Literal["auto", "on", "off"] | bool = "auto"  # auto: on with a GPU, off on CPU (where XLA is slower)
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "float32"  # auto: bf16 on bf16 CPUs
    steps_per_epoch: PositiveInt | None = None  # cap an epoch (short runs); None: the whole split
    eval_steps: PositiveInt | None = None       # cap evaluation; None: the whole split
    steps_per_execution: Literal["auto"] | PositiveInt = "auto"  # steps per call into TensorFlow (a divisor of
                                                # the epoch's steps); auto: zoo.training.compile
    eval_every: PositiveInt = 1                 # evaluate every N epochs, and always after the last one
    keep_checkpoints: PositiveInt = 2           # the last epochs' checkpoints kept, to resume if one is damaged
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"  # zoo.training.distribute
    sync_batch_norm: bool = False               # batch statistics over the global batch, not each replica's
    freeze: str | None = None                   # a config layer (it and all before it) or all_but_head; frozen
                                                # batch norm keeps its moving statistics (zoo.training.freezing)
    freeze_epochs: PositiveInt | None = None    # frozen for the first N epochs, then everything trains on

    def __post_init__(self):
        if isinstance(self.xla, bool):  # YAML 1.1 reads an unquoted `on`/`off` as true/false
            object.__setattr__(self, "xla", "on" if self.xla else "off")

    def eval_epochs(self) -> list[int]:
        """The epochs (counted from 1) after which the eval split is scored: every eval_every-th, and the last."""
        return sorted({*range(self.eval_every, self.epochs + 1, self.eval_every), self.epochs})


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The artifacts a finished run writes, each verified against the Keras model (zoo.deploy.formats)."""

    saved_model: bool = True                 # saved_model/: uint8 images of any size -> probabilities, class
    keras: bool = True                       # model.keras: float input, normalised outside
    litert: bool = False                     # model.tflite: LiteRT builtin ops, uint8 images at the training size
    litert_int8: bool = False                # model_int8.tflite: the same, full-integer quantized
    onnx: bool = False                       # model.onnx: uint8 images at the training size
    calibration_images: PositiveInt = 200    # litert_int8: training images the quantization is calibrated on

    def formats(self) -> list[str]:
        """The formats switched on, in the order above (the order they are exported in)."""
        return [name for name in EXPORT_FORMATS if getattr(self, name)]


EXPORT_FORMATS = tuple(field.name for field in dataclasses.fields(ExportConfig) if field.type == "bool")


def check_export_format(name: str) -> str:
    """`name` if it names an export format, else the ZooError that `--format` answers with."""
    if name not in EXPORT_FORMATS:
        raise ZooError(f"--format: {unknown('format', name, EXPORT_FORMATS)}")
    return name


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    model: dict[str, Any]
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    description: str = ""

    def model_config(self) -> ModelConfig:
        """The model section as a validated model config (input shape and classes not yet from data)."""
        return validate_model(self.model, f"{self.name}: model")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, for YAML and JSON."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.optimizer.learning_rate=0.05' -> (['train', 'optimizer', 'learning_rate'], 0.05)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"expected dotted.key=value, received {text!r}", source="--set")
    try:
        parsed = yaml.load(value, Loader=StrictLoader) if value.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"cannot parse the value {value!r}", source="--set", key=key) from None
    return key.split("."), parsed


def set_dotted(data: dict, path: list[str], value: Any, key: str) -> None:
    """Sets `data[a][b]... = value`, creating mappings as needed; a layer list is indexed by layer name."""
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list):
            names = [layer_name(entry, i) for i, entry in enumerate(node)]
            if part not in names:
                raise ConfigError(f"no layer named {part!r} (layers: {', '.join(names)})", source="--set", key=key)
            node = node[names.index(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(path[:depth])} is not a mapping", source="--set", key=key)
        node = node.setdefault(part, {})
    if isinstance(node, list):
        raise ConfigError("expected a key inside a layer, received a layer name at the end", source="--set", key=key)
    if not isinstance(node, dict):
        raise ConfigError(f"{'.'.join(path[:-1])} is not a mapping", source="--set", key=key)
    node[path[-1]] = value


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Experiment:
    """The experiment in `path` (or a shipped experiment's name), checked, with `--set` overrides applied and
    checked, model resolved."""
    path = config_path(path, "experiment")
    raw = load_yaml(path)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"expected a mapping of sections, received {type(raw).__name__}", source=str(path))
    raw = {"name": path.stem, **raw}
    experiment = experiment_from_mapping(raw, str(path), path.parent)
    if not overrides:
        return experiment
    data = _plain(dict(raw))
    for text in overrides:
        keys, value = parse_override(text)
        set_dotted(data, keys, value, ".".join(keys))
    return experiment_from_mapping(data, "--set", path.parent)


def experiment_from_mapping(raw: Mapping[str, Any], source: str, directory: Path) -> Experiment:
    """An Experiment from a mapping, its model section resolved (base files merged) and validated."""
    try:
        experiment = build_dataclass(Experiment, raw)
    except ConfigError as error:
        raise error.located(source) from None
    if not isinstance(raw.get("model"), Mapping):
        raise ConfigError("expected a mapping such as {base: resnet20}", source=source, key="model")
    try:
        model = resolve_bases(raw["model"], source, directory)
        validate_model(model, source)
    except ConfigError as error:
        raise error.located(key_prefix="model") from None
    data = experiment.data
    if len(data.mean) != len(data.std):
        raise ConfigError(f"expected as many std values as mean values ({len(data.mean)}), received {len(data.std)}",
                          source=source, key="data.std")
    return dataclasses.replace(experiment, model=model)
