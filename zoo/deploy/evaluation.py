"""Evaluating a SavedModel on a dataset split: loss, top-1, top-5, per-class accuracy, confusion matrix, speed.

Only the SavedModel's `serving_default` is called, so this works on an export alone, with no
zoo model code; the zoo's data loading reads the dataset (the run's own data config when
given a run directory, else `--data`).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.data.preprocess import Preprocessing
from zoo.data.sources import dataset_builder, load_split
from zoo.deploy.export import read_metadata
from zoo.experiment import DataConfig


def locate(target: str | Path) -> tuple[Path, Path | None]:
    """(SavedModel directory, run directory or None) for a run directory or a SavedModel."""
    target = Path(target)
    if (target / "saved_model" / "saved_model.pb").exists():
        return target / "saved_model", target
    if (target / "saved_model.pb").exists():
        return target, None
    raise ZooError(f"expected a run directory (with saved_model/) or a SavedModel directory, received {target}")


def data_config(run_dir: Path | None, name: str | None, data_dir: str | None) -> DataConfig:
    """The data to evaluate on: --data if given, else the run's own data config."""
    if run_dir is not None and name is None:
        from zoo.common.schema import build_dataclass
        from zoo.common.yamlfiles import load_yaml

        config = build_dataclass(DataConfig, load_yaml(run_dir / "config.yaml")["data"])
        return config if data_dir is None else dataclasses.replace(config, data_dir=data_dir)
    if name is None:
        raise ZooError("--data: expected a TFDS dataset name for a SavedModel outside a run directory, received none")
    return DataConfig(name=name, data_dir=data_dir)


def evaluate(target: str | Path, *, data: str | None = None, split: str = "test", data_dir: str | None = None,
             batch_size: int = 256, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluates the SavedModel at `target` on `split`; writes evaluation.json and the confusion matrix."""
    saved_model, run_dir = locate(target)
    metadata = read_metadata(saved_model)
    config = data_config(run_dir, data, data_dir)
    builder = dataset_builder(config)
    class_names = list(builder.info.features["label"].names)
    if metadata.get("class_names") and len(metadata["class_names"]) != len(class_names):
        raise ZooError(f"the model has {len(metadata['class_names'])} classes, the dataset {builder.name} has "
                       f"{len(class_names)}")
    images = load_split(builder, config, split, training=False, seed=0)
    dataset = images.dataset
    if "image_size" in metadata:  # batching needs one size; the serving function would resize anyway
        resize = Preprocessing.from_json(metadata).resize_uint8
        dataset = dataset.map(lambda image, label: (resize(image), label))
    serving = tf.saved_model.load(str(saved_model)).signatures["serving_default"]

    classes = len(class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    loss_sum, top5_hits, seen, seconds = 0.0, 0, 0, 0.0
    for batch, (x, y) in enumerate(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)):
        start = time.perf_counter()
        probabilities = serving(images=x)["probabilities"].numpy()
        if batch:  # the first call includes tracing
            seconds += time.perf_counter() - start
            seen += len(probabilities)
        labels = y.numpy()
        loss_sum += float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1)).sum())
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        top5_hits += int((top5 == labels[:, None]).any(axis=1).sum())
        np.add.at(confusion, (labels, probabilities.argmax(1)), 1)
    total = int(confusion.sum())
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, name in enumerate(class_names)}
    result = {
        "saved_model": str(saved_model), "dataset": builder.name, "split": split, "examples": total,
        "loss": loss_sum / total, "accuracy": float(np.trace(confusion) / total), "top5": top5_hits / total,
        "per_class": per_class, "images_per_sec": round(seen / seconds, 1) if seconds else None,
    }
    out = Path(out_dir) if out_dir else (run_dir or saved_model.parent) / f"evaluation-{split.replace('/', '_')}"
    write_confusion(out, confusion, class_names)
    files.write_json(out / "evaluation.json", result)
    result["out_dir"] = str(out)
    return result


def write_confusion(out: Path, confusion: np.ndarray, class_names: list[str]) -> None:
    """confusion_matrix.csv (rows: true class, columns: predicted) and confusion_matrix.png."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["true \\ predicted", *class_names])
    writer.writerows([name, *row] for name, row in zip(class_names, confusion.tolist()))
    files.write_atomic(out / "confusion_matrix.csv", text.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.4 * len(class_names))
    figure, axes = plt.subplots(figsize=(size + 1, size))
    shown = axes.imshow(confusion, cmap="Blues")
    figure.colorbar(shown, ax=axes)
    if len(class_names) <= 30:
        axes.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
        axes.set_yticks(range(len(class_names)), class_names, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    files.write_atomic(out / "confusion_matrix.png", buffer.getvalue())


def format_result(result: dict[str, Any]) -> str:
    lines = [f"{result['dataset']} {result['split']}: {result['examples']:,} images",
             f"  loss {result['loss']:.4f}   top-1 {result['accuracy']:.2%}   top-5 {result['top5']:.2%}   "
             f"{result['images_per_sec'] or 0:,.0f} images/s",
             "  per class: " + ", ".join(f"{k} {v:.1%}" for k, v in result["per_class"].items() if v is not None),
             f"  written to {result['out_dir']}"]
    return "\n".join(lines)
