"""The zoo's trained weights as presets: a weights file and its model card, loadable offline.

A preset is data, not code: `presets/NAME.yaml` (the data folder beside this module), its card,
beside `NAME.weights.h5`, both shipped inside the package (float32 files of at most 10 MB; float16
ones, for VGG-class networks whose float32 file is over that, of at most 40 MB; a larger one names a
`url` instead, which Keras's `get_file` fetches once, checks against the card's sha256 and caches).
The card carries what using the weights right depends on, as torchvision's weights enums do: the
model config, the dataset and splits, the class names, the preprocessing (size, channels, mean,
std), the measured top-1/top-5 and how they were measured, the experiment, command and commit that
trained them, parameters, MACs, file size, storage dtype and sha256. `python -m zoo publish RUN_DIR
--name NAME` writes one (zoo.training.publish); `python -m zoo presets` lists them.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from zoo.common.errors import ZooError, describe_exception, unknown
from zoo.common.yamlfiles import load_yaml
from zoo.models.config import ModelConfig, validate_model

PRESET_DIR = Path(__file__).resolve().parent / "presets"
WEIGHTS_SUFFIX = ".weights.h5"
STORAGE = ("float32", "float16")  # a weights file's dtype (the card's weights.storage); Keras casts on loading
# The most a weights file inside the package may be, by its storage: 10 MB where the architecture
# allows, and float16 up to 40 MB for the VGG class, whose float32 weights are 39-61 MB at CIFAR size.
MAX_SHIPPED_BYTES = {"float32": 10_000_000, "float16": 40_000_000}
CARD_KEYS = ("name", "description", "model", "weights", "dataset", "class_names", "preprocessing", "metrics",
             "training", "params", "macs")


class PresetError(ZooError):
    """A preset that is unknown, or whose card or weights file is missing or damaged."""


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    card: dict[str, Any]
    card_path: Path

    @property
    def model_config(self) -> ModelConfig:
        return validate_model(self.card["model"], f"{self.card_path}: model")

    @property
    def class_names(self) -> list[str]:
        return list(self.card["class_names"])

    @property
    def preprocessing(self) -> dict[str, Any]:
        """{"image_size": [h, w], "channels": c, "mean": [...], "std": [...]}: what the weights were trained on."""
        return dict(self.card["preprocessing"])

    @property
    def sha256(self) -> str:
        return self.card["weights"]["sha256"]

    def weights_file(self) -> Path:
        """The weights file, its sha256 checked: the shipped one, or the card's URL fetched once and cached."""
        weights = self.card["weights"]
        if weights.get("url"):
            import keras

            try:
                path = Path(keras.utils.get_file(f"{self.name}{WEIGHTS_SUFFIX}", weights["url"],
                                                 file_hash=weights["sha256"], cache_subdir="zoo_presets"))
            except Exception as error:  # the download surfaces as URLError, HTTPError, OSError or ValueError
                raise PresetError(f"preset {self.name!r}: cannot fetch {weights['url']} "
                                  f"({describe_exception(error)})") from None
        else:
            path = self.card_path.parent / weights["file"]
            if not path.is_file():
                raise PresetError(f"preset {self.name!r}: its weights file {path} is missing (reinstall the zoo)")
        actual = file_sha256(path)
        if actual != weights["sha256"]:
            raise PresetError(f"preset {self.name!r}: {path} has sha256 {actual}, expected {weights['sha256']} "
                              "(a damaged or replaced file; reinstall the zoo or delete the cached download)")
        return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_presets(directory: Path | None = None) -> list[str]:
    """The names of the shipped presets (or those in `directory`), sorted."""
    return sorted(path.stem for path in (directory or PRESET_DIR).glob("*.yaml"))


def get_preset(name: str, directory: Path | None = None) -> Preset:
    """The preset called `name`; an unknown name is one line with a did-you-mean."""
    path = (directory or PRESET_DIR) / f"{name}.yaml"
    if not path.is_file():
        raise PresetError(unknown("preset", name, list_presets(directory)))
    card = load_yaml(path)
    missing = [key for key in CARD_KEYS if not isinstance(card, dict) or key not in card]
    if missing:
        raise PresetError(f"{path}: expected a model card with {', '.join(CARD_KEYS)}; missing: {', '.join(missing)}")
    return Preset(name, card, path)


def is_preset(name: str, directory: Path | None = None) -> bool:
    return "/" not in name and ((directory or PRESET_DIR) / f"{name}.yaml").is_file()


def names_a_preset(source: str | Path) -> bool:
    """Whether `source` (weights or a model to load) means a preset: a shipped preset's name, or a bare
    word that is no file, so that a mistyped name gets get_preset's did-you-mean, not 'no such file'."""
    text = str(source)
    return is_preset(text) or ("/" not in text and not Path(text).suffix and not Path(text).exists())


def training_lineage(name: str, directory: Path | None = None) -> list[dict[str, Any]]:
    """The card's training record of preset `name` and of each preset it was trained further from
    (training.started_from, followed while that preset ships with the same sha256), oldest first."""
    lineage = [get_preset(name, directory).card["training"]]
    while (parent := _shipped_parent(lineage[0], directory)):
        lineage.insert(0, parent.card["training"])
    return lineage


def _shipped_parent(training: dict[str, Any], directory: Path | None) -> Preset | None:
    """The preset a training record started from, if it ships with the weights that record names."""
    started = training.get("started_from")
    if not started or not is_preset(started["source"], directory):
        return None
    parent = get_preset(started["source"], directory)
    return parent if parent.sha256 == started["sha256"] else None


def _started(card: dict[str, Any], directory: Path | None = None) -> str:
    """How the presets table says where a preset's training started: from random weights (nothing), a
    shipped preset (its name) or other weights."""
    if not card["training"].get("started_from"):
        return ""
    parent = _shipped_parent(card["training"], directory)
    return f" from {parent.name}" if parent else " from weights not shipped"


def presets_table(directory: Path | None = None) -> str:
    """The catalogue as Markdown: one row per preset."""
    lines = ["| preset | model | dataset | top-1 | top-5 | input | classes | parameters | MACs | file | trained by |",
             "|---|---|---|---:|---:|---|---:|---:|---:|---:|---|"]
    for name in list_presets(directory):
        card = get_preset(name, directory).card
        metrics, pre = card["metrics"], card["preprocessing"]
        size = "x".join(str(v) for v in [*pre["image_size"], pre["channels"]])
        lines.append(f"| {name} | {card['model']['name']} | {card['dataset']['name']} ({card['dataset']['eval_split']}) "
                     f"| {metrics['top1']:.2%} | {metrics['top5']:.2%} | {size} | {len(card['class_names'])} | "
                     f"{card['params']:,} | {card['macs']:,} | {card['weights']['bytes'] / 1e6:.2f} MB | "
                     f"{card['training']['experiment']}, {card['training']['epochs']} epochs{_started(card, directory)} |")
    return "\n".join(lines)
