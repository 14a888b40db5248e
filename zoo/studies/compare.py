"""`python -m zoo compare`: model configs and finished runs side by side, measured the same way.

Each argument is a model config (a path or a shipped model's name) or a run directory (with
summary.json and config.yaml). Every row gets its input size, parameters and MACs (analytic for a
config, from summary.json for a run), measured inference speed (images/s at batch 64, latency at
batch 1, a tf.function-compiled forward pass of the built or saved Keras model, timed after a
warm-up for about a second and at least two passes) and the size of its SavedModel (a config's
freshly built model is exported to a temporary directory; a run's RUN/saved_model is measured).
Runs add their evaluation top-1 and top-5 and their training throughput.

The table is printed and written as compare.md and compare.csv; with at least one run, the
runs' top-1 accuracy against MACs is plotted to compare_accuracy_vs_macs.png.
"""
from __future__ import annotations

import csv
import dataclasses
import gc
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.models.analysis import analyze, human
from zoo.models.config import load_model_config
from zoo.studies.figures import pyplot, save_figure

if TYPE_CHECKING:
    import keras

THROUGHPUT_BATCH = 64
MEASURE_SECONDS = 1.0  # timing stops after this long in all, and at least MIN_PASSES passes
MIN_PASSES = 2
PLOT = "compare_accuracy_vs_macs.png"


@dataclasses.dataclass(frozen=True)
class Row:
    """One compared model; None where a value does not apply (metrics of a config) or was not measured."""

    model: str
    source: str  # the argument as given
    input: str  # HxWxC
    params: int
    macs: int
    images_per_sec: float | None
    latency_ms: float | None
    saved_model_mb: float | None
    top1: float | None = None
    top5: float | None = None
    train_images_per_sec: float | None = None

    @property
    def is_run(self) -> bool:
        return self.top1 is not None


COLUMNS = [field.name for field in dataclasses.fields(Row)]
HEADERS = ["model", "source", "input", "params", "MACs", f"images/s (batch {THROUGHPUT_BATCH})",
           "latency ms (batch 1)", "SavedModel MB", "top-1", "top-5", "train images/s"]
RIGHT_ALIGNED = set(range(3, len(HEADERS)))


# ----------------------------------------------------------------------------- measuring


def seconds_per_pass(model: "keras.Model", batch_size: int, xla: bool) -> float:
    """Median seconds of one compiled forward pass of `batch_size` random images, after a warm-up pass."""
    import tensorflow as tf

    forward = tf.function(lambda images: model(images, training=False), jit_compile=xla)
    images = tf.random.uniform((batch_size, *model.input_shape[1:]))
    forward(images).numpy()  # traces, compiles and warms up; .numpy() waits for the device
    times: list[float] = []
    while len(times) < MIN_PASSES or sum(times) < MEASURE_SECONDS:
        start = time.perf_counter()
        forward(images).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def directory_mb(path: Path) -> float:
    """The total size of the files under `path`, in MB (10^6 bytes)."""
    return round(files.disk_size(path) / 1e6, 3)


def exported_mb(model: "keras.Model") -> float:
    """The size of `model` exported as a SavedModel (with identity normalisation) to a temporary directory."""
    from zoo.data.preprocess import Preprocessing
    from zoo.deploy import saved_model
    from zoo.deploy.artifact import Source

    height, width, channels = model.input_shape[1:]
    preprocessing = Preprocessing((height, width), channels, mean=(0.0,), std=(1.0,))
    with tempfile.TemporaryDirectory(prefix="zoo-compare-") as tmp:
        path = Path(tmp) / "saved_model"
        saved_model.write(Source(model, preprocessing, [str(i) for i in range(model.output_shape[-1])]), path)
        return directory_mb(path)


def speed(model: "keras.Model", timing: bool) -> dict[str, float | None]:
    """images_per_sec at THROUGHPUT_BATCH and latency_ms at batch 1, or Nones without timing."""
    if not timing:
        return {"images_per_sec": None, "latency_ms": None}
    from zoo.training.compile import resolve_xla

    xla, _ = resolve_xla("auto")
    return {"images_per_sec": round(THROUGHPUT_BATCH / seconds_per_pass(model, THROUGHPUT_BATCH, xla), 1),
            "latency_ms": round(1000 * seconds_per_pass(model, 1, xla), 3)}


def input_size(model: "keras.Model") -> str:
    return "x".join(str(d) for d in model.input_shape[1:])


# ----------------------------------------------------------------------------- one row per argument


def is_run_directory(path: Path) -> bool:
    return (path / "summary.json").is_file() and (path / "config.yaml").is_file()


def config_row(reference: str, timing: bool) -> Row:
    """Builds the config's model, times it and exports it to measure its SavedModel."""
    from zoo.models.builder import build_model

    config = load_model_config(reference)
    analysis = analyze(config)
    model = build_model(config)
    return Row(config.name, reference, input_size(model), analysis.params, analysis.macs, **speed(model, timing),
               saved_model_mb=exported_mb(model))


def run_row(reference: str, timing: bool) -> Row:
    """Loads the run's model.keras and times it; metrics and counts come from its summary.json."""
    from zoo.studies.visualize import load_run_model

    run_dir = Path(reference)
    summary = json.loads((run_dir / "summary.json").read_text())
    model = load_run_model(run_dir)
    saved_model = run_dir / "saved_model"
    metrics = summary["metrics"]
    return Row(summary["model"], reference, input_size(model), summary["params"], summary["macs"],
               **speed(model, timing), saved_model_mb=directory_mb(saved_model) if saved_model.is_dir() else None,
               top1=metrics["eval_accuracy"], top5=metrics["eval_top5"],
               train_images_per_sec=summary["train_images_per_sec"])


def check_argument(reference: str) -> None:
    """Refuses, before any model is built, an argument that is neither a run directory nor a valid config."""
    path = Path(reference)
    expected = "expected a model config, a shipped model's name or a run directory (with summary.json and config.yaml)"
    if path.is_dir():
        if not is_run_directory(path):
            raise ZooError(f"{expected}, received {reference!r} (a directory without them)")
    elif ("/" in reference or reference.endswith((".yaml", ".yml"))) and not path.is_file():
        raise ZooError(f"{expected}, received {reference!r} (no such file or directory)")
    else:
        load_model_config(reference)  # a bad config or an unknown name: its own one-line error


def compare_rows(references: Sequence[str], timing: bool = True) -> Iterator[Row]:
    """One row per config or run directory, in order; each model is freed before the next is built."""
    import keras

    if not references:
        raise ZooError("expected at least one model config, model name or run directory, received none")
    for reference in references:
        check_argument(reference)
    for reference in references:
        measure = run_row if is_run_directory(Path(reference)) else config_row
        row = measure(reference, timing)
        keras.backend.clear_session()
        gc.collect()
        yield row


# ----------------------------------------------------------------------------- output


def _number(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def display_cells(row: Row) -> list[str]:
    """The row as the printed and Markdown tables show it."""
    return [row.model, row.source, row.input, f"{row.params:,}", human(row.macs),
            _number(row.images_per_sec, ",.1f"), _number(row.latency_ms, ".2f"), _number(row.saved_model_mb, ".1f"),
            _number(row.top1, ".2%"), _number(row.top5, ".2%"), _number(row.train_images_per_sec, ",.0f")]


def format_table(rows: Sequence[Row]) -> str:
    """The aligned plain-text table."""
    cells = [display_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in [HEADERS, *cells]) for i in range(len(HEADERS))]

    def fmt(line: list[str]) -> str:
        return "  ".join(cell.rjust(w) if i in RIGHT_ALIGNED else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(line, widths))).rstrip()

    rule = "-" * max(len(fmt(HEADERS)), *(len(fmt(line)) for line in cells))
    return "\n".join([fmt(HEADERS), rule, *map(fmt, cells)])


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---:" if i in RIGHT_ALIGNED else "---" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(display_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[Row]) -> str:
    """Unformatted values, one column per Row field; empty where a value does not apply."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in dataclasses.asdict(row).items()} for row in rows)
    return out.getvalue()


def plot_accuracy_vs_macs(rows: Sequence[Row], path: Path) -> Path:
    """Top-1 accuracy of the trained runs against their MACs (log scale), each point labelled."""
    runs = [row for row in rows if row.is_run]
    figure, axes = pyplot().subplots(figsize=(7, 5))
    axes.scatter([row.macs for row in runs], [100 * row.top1 for row in runs])
    for row in runs:
        axes.annotate(f"{row.model} ({Path(row.source).name})", (row.macs, 100 * row.top1),
                      textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.set_xscale("log")
    axes.set_ylim(top=min(axes.get_ylim()[1], 100.5))  # accuracy stops at 100%
    axes.set_xlabel("MACs per image (log scale)")
    axes.set_ylabel("evaluation top-1 accuracy (%)")
    axes.set_title("Accuracy against compute")
    axes.grid(True, which="both", alpha=0.3)
    return save_figure(figure, path)


def compare(references: Sequence[str], out_dir: str | Path = "compare", timing: bool = True) -> list[Row]:
    """Measures every reference, prints the table and writes compare.md, compare.csv (and the plot) to `out_dir`."""
    rows = []
    for row in compare_rows(references, timing):
        rows.append(row)
        print(f"measured {row.model} ({row.source})", flush=True)
    out_dir = Path(out_dir)
    print(format_table(rows))
    files.write_atomic(out_dir / "compare.md", markdown_table(rows))
    files.write_atomic(out_dir / "compare.csv", csv_table(rows))
    written = ["compare.md", "compare.csv"]
    if any(row.is_run for row in rows):
        plot_accuracy_vs_macs(rows, out_dir / PLOT)
        written.append(PLOT)
    print(f"wrote {', '.join(str(out_dir / name) for name in written)}")
    return rows
