"""Evaluating exported artifacts on a dataset split: loss, top-1, top-5, per-class accuracy, confusion matrix, speed
(images/s over the split's batches, and batch-1 latency: zoo.deploy.speed).

An artifact (a SavedModel, or a .keras, .tflite or .onnx file) is run in its own runtime
(zoo.deploy.formats), so the accuracy measured is that of what ships; a run directory stands for
the artifacts it holds. The data is what the artifact's metadata records it was trained on (the
run's data config), or `--data` for another dataset. Images are resized to the artifact's input
size with the training preprocessing before they are batched, the same way for every format.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.data.sources import class_names as dataset_class_names
from zoo.data.sources import dataset_builder, load_split
from zoo.deploy.artifact import Artifact
from zoo.deploy.formats import format_of, open_artifact, run_artifacts
from zoo.deploy.speed import latency
from zoo.deploy.tta import check_tta, predict_with_tta
from zoo.experiment import DataConfig


def is_run_directory(path: Path) -> bool:
    return (path / "config.yaml").is_file()


def artifacts(target: str | Path, formats: Iterable[str] | None = None) -> list[Path]:
    """The artifacts `target` stands for: a run directory's (those of `formats`, or all), or `target` itself."""
    target = Path(target)
    if is_run_directory(target):
        found = run_artifacts(target, formats)
        if not found:
            raise ZooError(f"expected a run directory with exported artifacts, received {target}, which has none "
                           f"(python -m zoo export {target} writes them)")
        return found
    if formats:
        raise ZooError(f"--format: expected a run directory to pick artifacts from, received the artifact {target}")
    format_of(target)  # a clear error for anything that is not an artifact
    return [target]


def data_config(artifact: Artifact, run_dir: Path | None, name: str | None, data_dir: str | None) -> DataConfig:
    """The data to evaluate on: --data if given, else what the artifact records, else its run's config."""
    from zoo.common.schema import build_dataclass

    if name is not None:
        return DataConfig(name=name, data_dir=data_dir)
    if artifact.metadata.get("data"):
        config = build_dataclass(DataConfig, artifact.metadata["data"])
    elif run_dir is not None:
        from zoo.common.yamlfiles import load_yaml

        config = build_dataclass(DataConfig, load_yaml(run_dir / "config.yaml")["data"])
    else:
        raise ZooError(f"--data: expected a TFDS dataset name, as {artifact.path} does not record the data it was "
                       f"trained on, received none")
    return config if data_dir is None else dataclasses.replace(config, data_dir=data_dir)


def evaluate(target: str | Path, *, format: str | None = None, data: str | None = None, split: str | None = None,
             data_dir: str | None = None, batch_size: int = 256, out_dir: str | Path | None = None,
             tta: str | None = None) -> dict[str, Any]:
    """Evaluates one artifact (a run directory's `format`, default its SavedModel) on `split`.

    With `tta` (zoo.deploy.tta: `flip`) the averaged views are scored too, beside the single view.

    `split` defaults to the evaluation split the artifact was trained with (else `test`). Writes
    evaluation.json and the confusion matrix to `out_dir` (default: evaluation-SPLIT/FORMAT in the
    run directory, or beside the artifact) and returns the result.
    """
    check_tta(tta)
    target = Path(target)
    if is_run_directory(target):
        found = artifacts(target, [format] if format else None)
        path = next((p for p in found if p.name == "saved_model"), found[0])
    else:
        path = artifacts(target)[0]
    run_dir = path.parent if is_run_directory(path.parent) else None
    artifact = open_artifact(path)
    config = data_config(artifact, run_dir, data, data_dir)
    if split is None:
        split = config.eval_split if data is None else "test"
    builder = dataset_builder(config)
    class_names = dataset_class_names(builder, config)
    expected = artifact.metadata.get("class_names")
    if expected and len(expected) != len(class_names):
        raise ZooError(f"the model has {len(expected)} classes, the dataset {builder.name} has {len(class_names)}")
    preprocessing = artifact.preprocessing
    channels = config.channels or builder.info.features["image"].shape[-1]
    if preprocessing is not None and channels != preprocessing.channels:
        raise ZooError(f"the model takes {preprocessing.channels}-channel images, the dataset {builder.name} has "
                       f"{channels}-channel ones")
    dataset = load_split(builder, config, split, training=False, seed=0).dataset
    if preprocessing is not None:  # batching needs one size, and fixed-size formats need theirs
        dataset = dataset.map(lambda image, label: (preprocessing.resize_uint8(image), label))

    classes = len(class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    loss_sum, top5_hits, seen, seconds = 0.0, 0, 0, 0.0
    tta_hits = tta_top5_hits = 0
    for batch, (x, y) in enumerate(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()):
        if not batch:
            first_image = x[:1]
        start = time.perf_counter()
        probabilities = artifact.predict(x)
        if batch:  # the first call includes tracing and memory planning
            seconds += time.perf_counter() - start
            seen += len(probabilities)
        loss_sum += float(-np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-12, 1)).sum())
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        top5_hits += int((top5 == y[:, None]).any(axis=1).sum())
        np.add.at(confusion, (y, probabilities.argmax(1)), 1)
        if tta:
            averaged = predict_with_tta(artifact.predict, x, tta)
            tta_hits += int((averaged.argmax(1) == y).sum())
            tta_top5_hits += int((np.argsort(-averaged, axis=1)[:, :5] == y[:, None]).any(axis=1).sum())
    total = int(confusion.sum())
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, name in enumerate(class_names)}
    result = {
        "artifact": str(path), "format": artifact.format, "megabytes": round(files.disk_size(path) / 1e6, 3),
        "dataset": builder.name, "split": split, "examples": total,
        "loss": loss_sum / total, "accuracy": float(np.trace(confusion) / total), "top5": top5_hits / total,
        "per_class": per_class, "images_per_sec": round(seen / seconds, 1) if seconds else None,
        "latency": latency(artifact.predict, first_image, calls=100, seconds=0.5).as_json(),
    }
    if tta:
        result["tta"] = {"views": tta, "accuracy": tta_hits / total, "top5": tta_top5_hits / total}
    out = Path(out_dir) if out_dir else (run_dir or path.parent) / f"evaluation-{split.replace('/', '_')}" / \
        artifact.format
    write_confusion(out, confusion, class_names)
    files.write_json(out / "evaluation.json", result)
    result["out_dir"] = str(out)
    return result


def evaluate_all(target: str | Path, *, formats: Iterable[str] | None = None, out_dir: str | Path | None = None,
                 **options: Any) -> list[dict[str, Any]]:
    """Evaluates every artifact `target` stands for (see `artifacts`) on the same data; `options` as `evaluate`'s."""
    paths = artifacts(target, formats)
    if len(paths) == 1:
        return [evaluate(paths[0], out_dir=out_dir, **options)]
    return [evaluate(path, out_dir=Path(out_dir) / format_of(path) if out_dir else None, **options)
            for path in paths]


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
    lines = [f"{result['format']} {result['artifact']} ({result['megabytes']:,.2f} MB) on {result['dataset']} "
             f"{result['split']}: {result['examples']:,} images",
             f"  loss {result['loss']:.4f}   top-1 {result['accuracy']:.2%}   top-5 {result['top5']:.2%}   "
             f"{result['images_per_sec'] or 0:,.0f} images/s   batch-1 latency {result['latency']['median_ms']:.2f} ms "
             f"(p90 {result['latency']['p90_ms']:.2f})",
             *([f"  with {result['tta']['views']} TTA: top-1 {result['tta']['accuracy']:.2%} "
                f"({100 * (result['tta']['accuracy'] - result['accuracy']):+.2f} points)   "
                f"top-5 {result['tta']['top5']:.2%}"] if result.get("tta") else []),
             "  per class: " + ", ".join(f"{k} {v:.1%}" for k, v in result["per_class"].items() if v is not None),
             f"  written to {result['out_dir']}"]
    return "\n".join(lines)


def format_comparison(results: list[dict[str, Any]]) -> str:
    """The artifacts side by side, top-1 differences in percentage points against the first."""
    rows = [f"{'format':<12} {'MB':>9} {'top-1':>8} {'top-5':>8} {'vs first':>9} {'images/s':>10} "
            f"{'batch-1 ms':>11} {'p90 ms':>7}"]
    for result in results:
        rows.append(f"{result['format']:<12} {result['megabytes']:>9,.2f} {result['accuracy']:>8.2%} "
                    f"{result['top5']:>8.2%} {100 * (result['accuracy'] - results[0]['accuracy']):>+7.2f}pp "
                    f"{result['images_per_sec'] or 0:>10,.0f} {result['latency']['median_ms']:>11.2f} "
                    f"{result['latency']['p90_ms']:>7.2f}")
    return "\n".join(rows)
