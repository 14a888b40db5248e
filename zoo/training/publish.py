"""`python -m zoo publish RUN_DIR --name NAME`: a finished run becomes a preset (zoo.models.presets).

The weights are the run's `model.keras`, saved as NAME.weights.h5 in HDF5 1.10's compact format;
the card is built from the run's own records (config.yaml, summary.json, the metadata inside
model.keras) and from a fresh evaluation on the run's evaluation split, through the same uint8 ->
normalise path a user's images take, so the card's top-1 and top-5 are those of the file that ships.

`storage="float16"` halves the file, for architectures whose float32 weights are over the package's
10 MB (the VGGs, whose float16 files may be 40 MB). Keras casts each stored array to its variable's
dtype when it loads weights, so a float16 file loads into the float32 model unchanged; the card's
metrics are then measured on the weights rounded to float16, as they load, and the float32 run's
top-1 is recorded beside them, so what the storage cost is measured, not assumed.
"""
from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from zoo.common import files
from zoo.common.errors import ZooError, describe_exception
from zoo.common.yamlfiles import load_yaml
from zoo.experiment import Experiment, experiment_from_mapping
from zoo.models.analysis import analyze
from zoo.models.config import ModelConfig
from zoo.models.presets import MAX_SHIPPED_BYTES, PRESET_DIR, STORAGE, WEIGHTS_SUFFIX, file_sha256
from zoo.models.saving import load_keras_model, read_metadata

NAME_PATTERN = "letters, digits and '_', starting with a letter"
SUMMARY_KEYS = ("input_shape", "num_classes", "dataset", "experiment", "epochs", "metrics")
METADATA_KEYS = ("data", "class_names", "image_size", "channels", "mean", "std")
KERAS_WEIGHTS = "model.weights.h5"  # the weights inside a .keras archive


def publish(run_dir: str | Path, name: str, *, description: str | None = None,
            directory: Path | None = None, storage: str = "float32") -> Path:
    """Writes NAME.weights.h5 (its arrays stored as `storage`) and NAME.yaml (the card) into
    `directory`; returns the card's path."""
    run_dir, directory = Path(run_dir), directory or PRESET_DIR
    if not name or not name[0].isalpha() or not name.replace("_", "").isalnum():
        raise ZooError(f"--name: expected {NAME_PATTERN}, received {name!r}")
    if storage not in STORAGE:
        raise ZooError(f"--storage: expected one of {', '.join(STORAGE)}, received {storage!r}")
    needed = [run_dir / f for f in ("summary.json", "config.yaml", "model.keras")]
    missing = [path.name for path in needed if not path.is_file()]
    if missing:
        raise ZooError(f"{run_dir}: expected a finished run with summary.json, config.yaml and model.keras "
                       f"(export.keras: true); missing: {', '.join(missing)}")
    from zoo.deploy.evaluation import evaluate

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        metadata = read_metadata(run_dir / "model.keras")
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ZooError(f"{run_dir}: expected a finished run's summary.json and a model.keras with the zoo's "
                       f"metadata; cannot read them ({describe_exception(error)})") from None
    missing = [f"summary.json: {key}" for key in SUMMARY_KEYS if key not in summary] + \
        [f"model.keras metadata: {key}" for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise ZooError(f"{run_dir}: expected a run the zoo finished; missing {', '.join(missing)}")
    experiment = experiment_from_mapping(load_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"), run_dir)
    model_config = experiment.model_config().with_overrides(tuple(summary["input_shape"]), summary["num_classes"])
    model = load_keras_model(run_dir / "model.keras")
    weights_path = directory / f"{name}{WEIGHTS_SUFFIX}"
    directory.mkdir(parents=True, exist_ok=True)
    staging = files.staging_path(weights_path)
    try:
        model.save_weights(staging)
        staging.write_bytes(_converted_h5(staging.read_bytes(), _float16 if storage == "float16" else np.asarray))
        size = staging.stat().st_size
        if size > MAX_SHIPPED_BYTES[storage]:
            hint = " or store it as float16 (--storage float16)" if storage == "float32" else ""
            raise ZooError(f"{name}{WEIGHTS_SUFFIX} would be {size / 1e6:.2f} MB, over the "
                           f"{MAX_SHIPPED_BYTES[storage] / 1e6:g} MB a {storage} preset shipped in the package may "
                           f"be; host it and name its url in the card instead{hint}")
        with tempfile.TemporaryDirectory() as scratch:
            result = evaluate(run_dir, format="keras", out_dir=Path(scratch) / "float32")
            if storage == "float16":
                rounded = Path(scratch) / "model.keras"
                _round_keras_weights(run_dir / "model.keras", rounded)
                result = {**evaluate(rounded, out_dir=Path(scratch) / "float16"),
                          "float32_accuracy": result["accuracy"]}
        card = _card(name, description, run_dir, summary, metadata, result, experiment, model_config, weights_path,
                     staging, size, storage)
        card_path = _install(staging, weights_path, card)
    finally:
        files.remove(staging)  # gone once installed; a failure leaves nothing half-written behind
    return card_path


def _converted_h5(data: bytes, convert: Callable[[np.ndarray], np.ndarray]) -> bytes:
    """A weights file's bytes with each float32 array passed through `convert`, written anew (HDF5
    does not give back the space of an array replaced in place) in HDF5 1.10's file format, whose
    compact object headers take about 0.6 KB an array where Keras's default format takes 1.9:
    ResNet-56 as float16 takes 1.88 MB instead of 2.22, ResNet-32 as float32 1.96 instead of 2.16.
    Bounded to 1.10's features, so any HDF5 from 1.10 on reads it."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as source, h5py.File(buffer, "w", libver=("v110", "v110")) as target:
        _copy_h5(source, target, convert)
    return buffer.getvalue()


def _float16(values: np.ndarray) -> np.ndarray:
    """`values` as float16; a value past float16's range is one line, not a silent infinity."""
    stored = values.astype(np.float16)
    if not np.isfinite(stored).all():
        raise ZooError(f"--storage float16: a stored value of magnitude {np.abs(values).max():.4g} is over float16's "
                       f"{np.finfo(np.float16).max:.0f}; publish this run as float32")
    return stored


def _copy_h5(source: Any, target: Any, convert: Callable[[np.ndarray], np.ndarray]) -> None:
    """Copies an h5py group into another: subgroups, attributes, and arrays (float32 ones converted)."""
    import h5py

    target.attrs.update(source.attrs)
    for key, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_h5(item, target.create_group(key), convert)
        else:
            values = item[()]
            if item.dtype == np.float32:
                values = convert(np.asarray(values))
            target.create_dataset(key, data=values).attrs.update(item.attrs)


def _round_keras_weights(keras_path: Path, out: Path) -> None:
    """A copy of a .keras file whose weights are rounded to float16's values (kept float32): the
    model a float16 preset loads into, with the run's metadata, for evaluate()."""
    with zipfile.ZipFile(keras_path) as source, zipfile.ZipFile(out, "w") as target:
        if KERAS_WEIGHTS not in source.namelist():
            raise ZooError(f"{keras_path}: expected the weights as {KERAS_WEIGHTS} inside the archive, found "
                           f"{', '.join(source.namelist())}")
        for item in source.infolist():
            data = source.read(item)
            if item.filename == KERAS_WEIGHTS:
                data = _converted_h5(data, lambda values: _float16(values).astype(np.float32))
            target.writestr(item, data)


def _card(name: str, description: str | None, run_dir: Path, summary: dict, metadata: dict, result: dict,
          experiment: Experiment, model_config: ModelConfig, weights_path: Path, staging: Path,
          size: int, storage: str) -> dict[str, Any]:
    """The model card: everything presets.CARD_KEYS names, from the run's records and `result`."""
    analysis = analyze(model_config)
    card: dict[str, Any] = {
        "name": name,
        "description": description or f"{model_config.name} trained on {summary['dataset']} by the zoo's "
                                      f"{summary['experiment']} experiment",
        "model": model_config.raw,
        "weights": {"file": weights_path.name, "sha256": file_sha256(staging), "bytes": size, "storage": storage,
                    "url": None},
        "dataset": {key: metadata["data"].get(key) for key in ("name", "folder", "train_split", "eval_split")},
        "class_names": list(metadata["class_names"]),
        "preprocessing": {key: metadata[key] for key in ("image_size", "channels", "mean", "std")},
        "metrics": {"top1": round(result["accuracy"], 4), "top5": round(result["top5"], 4),
                    "loss": round(result["loss"], 4),
                    "measured": f"evaluate.py on the published model.keras: {result['dataset']} "
                                f"{result['split']}, {result['examples']:,} images, single view at "
                                f"{'x'.join(map(str, metadata['image_size']))}, uint8 pixels normalised "
                                f"with the card's mean and std, the weights as stored ({storage})"},
        "training": {"experiment": summary["experiment"], "epochs": summary["epochs"],
                     "train_accuracy": summary["metrics"].get("train_accuracy"),
                     "command": summary.get("command"), "commit": summary.get("commit"),
                     **({"resumed_at_commits": summary["resumed_at_commits"]} if summary.get("resumed_at_commits")
                        else {}),
                     **_started_from(summary.get("weights")),
                     "precision": summary.get("precision"), "wall_seconds": summary.get("wall_seconds"),
                     "train_images_per_sec": summary.get("train_images_per_sec"),
                     "cpu": summary.get("cpu"), "recipe": experiment.to_dict()["train"]},
        "params": analysis.params,
        "macs": analysis.macs,
    }
    if "float32_accuracy" in result:
        card["metrics"]["float32_top1"] = round(result["float32_accuracy"], 4)
    return card


def _started_from(record: dict | None) -> dict[str, Any]:
    """The trained weights a run started from (its weights.json), for the card: a preset trained
    further names its parent, so its epochs and wall time read as added to the parent's."""
    if not record:
        return {}
    return {"started_from": {"source": record["source"], "sha256": record["sha256"]}}


def _install(staging: Path, weights_path: Path, card: dict[str, Any]) -> Path:
    """Everything is written beside its place first; only the two renames (weights, then card) are
    left to fail, so a failure before them leaves the old preset as it was."""
    card_path = weights_path.with_name(f"{card['name']}.yaml")
    card_staging = files.staging_path(card_path)
    files.write_atomic(card_staging, yaml.safe_dump(card, sort_keys=False, width=110))
    files.install(staging, weights_path)
    files.install(card_staging, card_path)
    return card_path
