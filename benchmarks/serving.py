"""Serving speed: every format the zoo exports beside PyTorch eager of the same network, batch 1 and batch 64.

    python benchmarks/serving.py [--models resnet20,lenet5,resnet56] [--rounds 3] [--json PATH]

Each model is its preset (resnet20_cifar10, lenet5_mnist, resnet56_cifar10), exported by the zoo's own
code into a temporary folder in every format (each verified as a run's export is) and loaded in its runtime as
evaluate.py and `zoo.load` load it (zoo.deploy.formats.open_artifact): uint8 images at the model's
size in, probabilities out. PyTorch eager runs the bench's network of the same architecture
(reference_torch; random weights, as speed does not depend on them) under torch.inference_mode, in
NCHW and in channels_last, from the same uint8 images with the same normalisation and softmax.

Two more rows say where the SavedModel's time goes: the same SavedModel written without batch-norm
folding (zoo.deploy.graph.batch_norm_folded), and a SavedModel whose signature does nothing but cast
its input (TensorFlow's cost of one call of a SavedModel function, the floor for any model).

Each round measures every row in turn (interleaved): batch-1 latency (zoo.deploy.speed, up to 200
calls or 2 s) and batch-64 images/s (up to 30 calls or 3 s). Reported: the median and range over
rounds, and each row's ratio to the faster PyTorch layout of the same round (above 1: faster than
PyTorch). PyTorch's batch-64 rate moved by up to 15% from one process to the next on the same idle
machine (1,490-1,870 images/s for ResNet-20), so only the ratios within one run hold. Never run it
beside tests or training: a figure taken under load is wrong.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import checked_models, describe_machine  # noqa: E402  (benchmarks/run.py)
from zoo.common.errors import ZooError, exits_cleanly  # noqa: E402
from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

if TYPE_CHECKING:
    import keras
    import torch

# Each model's preset. build_rows also takes None (comparison.py passes it for configs with no preset): the
# config's own random weights then, as speed does not depend on the weights' values.
PRESETS = {"resnet20": "resnet20_cifar10", "lenet5": "lenet5_mnist", "resnet56": "resnet56_cifar10"}
BATCH = 64
PYTORCH = ("pytorch eager NCHW", "pytorch eager channels_last")


@dataclasses.dataclass
class Row:
    model: str
    name: str
    predict: Callable[[np.ndarray], object]
    latency_ms: list[float] = dataclasses.field(default_factory=list)
    p90_ms: list[float] = dataclasses.field(default_factory=list)
    images_per_sec: list[float] = dataclasses.field(default_factory=list)
    bytes: int | None = None  # the exported artifact's size on disk


def torch_predict(network: "torch.nn.Module", mean: Sequence[float], std: Sequence[float],
                  channels_last: bool) -> Callable[[np.ndarray], object]:
    """`network` (NCHW logits) as serving runs it: uint8 NHWC images in, normalised, softmax out. The
    network is moved to the layout in place: give each layout a network of its own."""
    import torch

    layout = torch.channels_last if channels_last else torch.contiguous_format
    network = network.eval().to(memory_format=layout)
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def predict(images: np.ndarray):
        with torch.inference_mode():
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).sub_(mean).div_(std)
            return torch.softmax(network(x.contiguous(memory_format=layout)), dim=-1).numpy()
    return predict


def reference_network(model_name: str) -> "torch.nn.Module":
    """The bench's hand-written PyTorch network of `model_name` (reference_torch), random weights."""
    import reference_torch
    import torch

    factory, _ = reference_torch.MODELS[model_name]
    torch.manual_seed(0)
    return factory()


def cast_only_saved_model(path: Path, channels: int) -> Callable[[np.ndarray], object]:
    """A SavedModel whose signature only casts its uint8 input: the cost of calling any SavedModel."""
    import tensorflow as tf

    from zoo.deploy.saved_model import write_endpoint

    write_endpoint(lambda images: {"probabilities": tf.cast(images, tf.float32)},
                   tf.TensorSpec([None, None, None, channels], tf.uint8, name="images"), path)
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda images: serving(images=tf.constant(images))["probabilities"].numpy()


def build_rows(model_name: str, folder: Path, skipped: list[str], preset_name: str | None = None,
               torch_network: Callable[["keras.Model"], "torch.nn.Module"] | None = None,
               diagnostics: bool = True) -> list[Row]:
    """Every row of one model (a config's name): its preset (`preset_name`, else the config's random weights)
    exported in every format, with `diagnostics` the two diagnostic SavedModels, and PyTorch eager in both
    layouts: `torch_network(model)`'s network (one per layout), by default the bench's hand-written one."""
    from zoo.data.preprocess import Preprocessing
    from zoo.deploy.artifact import Source
    from zoo.deploy.export import export_artifact
    from zoo.deploy.formats import FORMATS, get, open_artifact
    from zoo.models.create import create_model
    from zoo.models.presets import get_preset

    if preset_name:
        preset = get_preset(preset_name)
        preprocessing = Preprocessing.from_json(preset.preprocessing)
        model = create_model(preset.model_config, weights=preset.name, verbose=False)
        class_names, dataset = preset.class_names, preset.card["dataset"]
    else:  # no preset yet: the config's own initialisation serves as fast
        model = create_model(model_name, verbose=False)
        height, width, channels = model.input_shape[1:]
        preprocessing = Preprocessing((height, width), channels, (0.5,) * channels, (0.25,) * channels)
        class_names, dataset = [str(i) for i in range(model.output_shape[-1])], "none"
    height, width = preprocessing.image_size
    images = np.random.default_rng(0).integers(0, 256, (BATCH, height, width, preprocessing.channels), np.uint8)
    source = Source(model, preprocessing, class_names, {"name": dataset},
                    calibration_images=lambda: images)  # random pixels calibrate int8: speed, not accuracy
    rows = []
    for name in FORMATS:
        try:
            export_artifact(name, source, folder / model_name / get(name).filename, images[:32])
        except ZooError as error:  # a missing runtime: the export extra
            skipped.append(f"{model_name}: {name} ({error})")
            continue
        row = Row(model_name, name, open_artifact(folder / model_name / get(name).filename).predict)
        row.bytes = path_bytes(folder / model_name / get(name).filename)
        rows.append(row)
    if diagnostics:
        with mock.patch("zoo.deploy.graph.batch_norm_folded", lambda model: model):
            export_artifact("saved_model", source, folder / model_name / "unfolded", images[:32])
        rows.append(Row(model_name, "saved_model, batch norm not folded",
                        open_artifact(folder / model_name / "unfolded").predict))
        rows.append(Row(model_name, "saved_model that only casts its input (the call's floor)",
                        cast_only_saved_model(folder / model_name / "cast_only", preprocessing.channels)))
    try:
        import reference_torch  # noqa: F401  (its import also matches PyTorch's instructions to TensorFlow's)
    except ImportError:
        skipped.append(f"{model_name}: PyTorch rows (torch is not installed: pip install -e '.[bench]')")
    else:
        for name, channels_last in zip(PYTORCH, (False, True)):
            network = torch_network(model) if torch_network else reference_network(model_name)
            rows.append(Row(model_name, name, torch_predict(network, preprocessing.mean, preprocessing.std,
                                                            channels_last)))
    return rows


def path_bytes(path: Path) -> int:
    """A file's size, or a folder's (a SavedModel) in all."""
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(row: Row, images: np.ndarray, seconds: float = 2.0) -> None:
    """One round of a row: batch-1 latency (up to 200 calls or `seconds`), batch-64 images/s (up to 30 calls
    or 1.5 x `seconds`)."""
    from zoo.deploy.speed import images_per_second, latency

    one = latency(row.predict, images[:1], calls=200, seconds=seconds)
    row.latency_ms.append(one.median_ms)
    row.p90_ms.append(one.p90_ms)
    row.images_per_sec.append(images_per_second(row.predict, images, calls=30, seconds=1.5 * seconds))


def spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def ratios(row: Row, rows: list[Row]) -> tuple[list[float], list[float]] | None:
    """Per round: PyTorch's best latency / this row's, and this row's images/s / PyTorch's best."""
    torch_rows = [r for r in rows if r.model == row.model and r.name in PYTORCH]
    if not torch_rows:
        return None
    rounds = range(len(row.latency_ms))
    best_latency = [min(r.latency_ms[i] for r in torch_rows) for i in rounds]
    best_rate = [max(r.images_per_sec[i] for r in torch_rows) for i in rounds]
    return ([best_latency[i] / row.latency_ms[i] for i in rounds],
            [row.images_per_sec[i] / best_rate[i] for i in rounds])


def table(rows: list[Row], model_name: str) -> str:
    lines = [f"| {model_name} | batch-1 latency, ms | p90, ms | batch-{BATCH} images/s | batch 1 vs PyTorch | "
             f"batch {BATCH} vs PyTorch |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row.model != model_name:
            continue
        found = ratios(row, rows)
        versus = [spread(values, 2) + "x" for values in found] if found else ["-", "-"]
        lines.append(f"| {row.name} | {spread(row.latency_ms, 3)} | {statistics.median(row.p90_ms):.3f} | "
                     f"{spread(row.images_per_sec, 0)} | {versus[0]} | {versus[1]} |")
    return "\n".join(lines)


def as_json(row: Row, rows: list[Row]) -> dict:
    found = ratios(row, rows)
    return {"model": row.model, "row": row.name, "latency_ms": row.latency_ms, "p90_ms": row.p90_ms,
            "images_per_sec": row.images_per_sec,
            "batch1_vs_pytorch": found[0] if found else None, f"batch{BATCH}_vs_pytorch": found[1] if found else None}


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PRESETS), help=f"comma-separated: {', '.join(PRESETS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the rows as JSON here")
    parser.add_argument("--intra-op-threads", type=int,
                        help="TensorFlow's and PyTorch's threads within an op (default: theirs, the core count)")
    args = parser.parse_args(argv)
    models = checked_models(args.models, PRESETS)
    if args.rounds < 1:
        raise ZooError(f"--rounds: expected a positive number, received {args.rounds}")
    import_tensorflow_quietly()
    if args.intra_op_threads:  # what a server running one request per core would set
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(args.intra_op_threads)

    started = time.perf_counter()
    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="zoo-serving-") as folder:
        rows = [row for model in models for row in build_rows(model, Path(folder), skipped, PRESETS[model])]
        from zoo.models.config import load_model_config

        batches = {model: np.random.default_rng(1).integers(0, 256, (BATCH, *load_model_config(model).input_shape),
                                                             np.uint8) for model in models}
        for round_ in range(args.rounds):
            print(f"round {round_ + 1} of {args.rounds}", flush=True)
            for row in rows:
                measure(row, batches[row.model])
    machine = describe_machine()
    threads = f"; {args.intra_op_threads} intra-op thread(s)" if args.intra_op_threads else ""
    print(f"\nMachine: {machine}{threads}. Median (min-max) over {args.rounds} interleaved rounds.")
    for model in models:
        print("\n" + table(rows, model))
    for line in skipped:
        print(f"skipped: {line}")
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "intra_op_threads": args.intra_op_threads,
                                               "rows": [as_json(row, rows) for row in rows]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
