"""The five families side by side on CIFAR-10 (issue 38): docs/comparison/, made by `make comparison`.

    python benchmarks/comparison.py [--models lenet5_cifar,resnet20,...] [--rounds 3] [--out docs/comparison]
                                    [--study docs/ablations/equal_budget/results.csv]

Each model is a family's CIFAR-10 config (MODELS). Where a CIFAR-10 preset of that config ships, its card
gives the test accuracy (measured by evaluate.py on the published model, the whole test split) and the
training (epochs, wall time, training images/s, CPU), and the preset's weights are the ones exported;
a config without a preset yet is exported with its random initialisation (speed does not depend on the
weights; int8 calibrates on random pixels either way) and its accuracy says "no preset yet".
`--study` adds each family's row of the equal-budget study (zoo/configs/ablations/equal_budget.yaml's
results.csv): test top-1 as mean ± standard deviation over its seeds and the training images/s it
sustained, one recipe and the same wall-clock budget for every family.

Every model is exported by the zoo's own code in every format (zoo.deploy.formats: SavedModel, .keras,
LiteRT float and int8, ONNX) and loaded as `zoo.load` loads it: uint8 images in, probabilities out. The
PyTorch rows run the same network in PyTorch eager (zoo.models.torch_ops.TorchTwin, the preset's
weights copied in), NCHW and channels_last, from the same uint8 images with the same normalisation and
softmax; their largest probability difference from the SavedModel is reported. Rounds are interleaved:
each round measures every row of every model in turn (batch-1 latency, up to 200 calls or 1 s;
batch-64 images/s, up to 30 calls or 1.5 s), serving.py's way. Only ratios within one run hold.

Written to --out: README.md (the tables, the machine, the command), comparison.csv and comparison.json
(one row per model and format, every round), accuracy_vs_macs.png and accuracy_vs_latency.png (the
presets only: a point needs a measured accuracy). `--report-only` measures nothing and rewrites them
from --out's comparison.json, so the study's columns can join a measurement taken before it. Run it
on an idle machine, never beside tests or training.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import checked_models, describe_machine  # noqa: E402  (benchmarks/run.py)
from serving import BATCH, PYTORCH, Row, build_rows, measure, ratios, spread  # noqa: E402
from zoo.common import files  # noqa: E402
from zoo.common.errors import ZooError, describe_exception, exits_cleanly  # noqa: E402
from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

if TYPE_CHECKING:
    import keras
    import torch

# Each family's CIFAR-10 configs, smallest first
MODELS = {"lenet5_cifar": "LeNet-5", "alexnet_cifar": "AlexNet", "vgg11_bn_cifar": "VGG-11-BN",
          "vgg16_bn_cifar": "VGG-16-BN", "googlenet_cifar": "GoogLeNet", "resnet20": "ResNet-20",
          "resnet32": "ResNet-32", "resnet44": "ResNet-44", "resnet56": "ResNet-56"}
DATASET = "cifar10"


def cifar10_preset(config_name: str) -> str | None:
    """The most accurate shipped preset of `config_name` trained on all of CIFAR-10's training split and classes."""
    from zoo.models.presets import get_preset, list_presets

    found = []
    for name in list_presets():
        card = get_preset(name).card
        if (card["model"].get("name") == config_name and card["dataset"]["name"] == DATASET
                and card["dataset"]["train_split"] == "train" and len(card["class_names"]) == 10):
            found.append((card["metrics"]["top1"], name))
    return max(found)[1] if found else None


def twin_with_weights(config_name: str, preset_name: str | None) -> "Callable[[keras.Model], torch.nn.Module]":
    """A function of the Keras model: the PyTorch eager twin of the preset's (or the config's) model, its
    weights copied in."""
    from zoo.models.presets import get_preset
    from zoo.models.torch_ops import TorchTwin, copy_keras_weights

    def network(model):
        twin = TorchTwin(get_preset(preset_name).model_config if preset_name else config_name)
        copy_keras_weights(model, twin)
        return twin
    return network


def agreement(rows: list[Row], images: np.ndarray) -> float:
    """The largest probability difference between the PyTorch twin and the SavedModel on `images`."""
    by_name = {row.name: row for row in rows}
    return float(np.abs(np.asarray(by_name["saved_model"].predict(images))
                        - np.asarray(by_name[PYTORCH[0]].predict(images))).max())


def model_summary(config_name: str, preset_name: str | None, rows: list[Row], difference: float) -> dict:
    from zoo.models.analysis import analyze
    from zoo.models.config import load_model_config
    from zoo.models.presets import get_preset, training_lineage

    analysis = analyze(load_model_config(config_name))
    summary = {"model": config_name, "family": MODELS[config_name], "params": analysis.params,
               "macs": analysis.macs, "preset": preset_name, "top1": None, "top5": None,
               "torch_max_difference": difference,
               "bytes": {row.name: row.bytes for row in rows if row.bytes is not None}}
    if preset_name:
        card = get_preset(preset_name).card
        # a preset trained further from another: its epochs and wall time are added to its parents'
        lineage = training_lineage(preset_name)
        training = lineage[-1]
        walls = [record.get("wall_seconds") for record in lineage]
        summary.update(top1=card["metrics"]["top1"], top5=card["metrics"]["top5"],
                       epochs=sum(record["epochs"] for record in lineage),
                       epochs_by_run=[record["epochs"] for record in lineage],
                       wall_seconds=sum(walls) if all(walls) else None,
                       train_images_per_sec=training.get("train_images_per_sec"), cpu=training.get("cpu"),
                       precision=training.get("precision"))
    return summary


def read_study(path: Path) -> dict[str, dict]:
    """The equal-budget study's runs per config: test top-1 (mean, std, seeds), training images/s, seconds."""
    try:
        with open(path, newline="") as handle:
            runs = [row for row in csv.DictReader(handle) if row.get("status") == "ok"]
    except OSError as error:
        raise ZooError(f"--study: cannot read {path} ({error.strerror})") from None
    if not runs or "base" not in runs[0]:
        raise ZooError(f"--study: expected the results.csv of an ablation over model.base with finished runs, "
                       f"received {path}")
    found: dict[str, dict] = {}
    for config in {row["base"] for row in runs}:
        mine = [row for row in runs if row["base"] == config]
        top1 = [float(row["eval_accuracy"]) for row in mine]
        found[config] = {
            "top1_mean": statistics.mean(top1), "top1_std": statistics.stdev(top1) if len(top1) > 1 else 0.0,
            "seeds": len(top1), "images_per_sec": statistics.median(float(r["images_per_sec"]) for r in mine),
            "wall_seconds": statistics.median(float(r["wall_seconds"]) for r in mine)}
    return found


def fastest(rows: list[Row], model: str) -> Row:
    """The zoo format with the lowest median batch-1 latency for `model`."""
    return min((row for row in rows if row.model == model and row.name not in PYTORCH),
               key=lambda row: statistics.median(row.latency_ms))


def _mb(value: int | None) -> str:
    return f"{value / 1e6:.2f}" if value else "-"


def families_table(summaries: list[dict]) -> str:
    from zoo.deploy.formats import FORMATS

    lines = ["| family | config | parameters | MACs | preset | test top-1 | top-5 | epochs | training "
             "wall time | training images/s | equal budget: test top-1 | equal budget: training images/s | "
             + " | ".join(f"{name} MB" for name in FORMATS) + " |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(FORMATS)]
    for s in summaries:
        trained = s["preset"] is not None
        cells = [s["family"], f"`{s['model']}`", f"{s['params']:,}", f"{s['macs'] / 1e6:,.2f}M",
                 f"`{s['preset']}`" if trained else "no preset yet",
                 f"{100 * s['top1']:.2f}%" if trained else "-", f"{100 * s['top5']:.2f}%" if trained else "-",
                 " + ".join(map(str, s.get("epochs_by_run") or [s.get("epochs")])) if trained else "-",
                 f"{s['wall_seconds'] / 60:.1f} min" if s.get("wall_seconds") else "-",
                 f"{s['train_images_per_sec']:,.0f}" if s.get("train_images_per_sec") else "-"]
        study = s.get("study")
        cells += [f"{100 * study['top1_mean']:.2f}% ± {100 * study['top1_std']:.2f} ({study['seeds']} seeds)"
                  if study else "-", f"{study['images_per_sec']:,.0f}" if study else "-"]
        cells += [_mb(s["bytes"].get(name)) for name in FORMATS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def inference_table(rows: list[Row], summaries: list[dict]) -> str:
    lines = [f"| model | format | batch-1 latency, ms | p90, ms | batch-{BATCH} images/s | batch 1 vs PyTorch | "
             f"batch {BATCH} vs PyTorch |", "|---|---|---:|---:|---:|---:|---:|"]
    for s in summaries:
        for row in (r for r in rows if r.model == s["model"]):
            found = ratios(row, rows)
            versus = [spread(values, 2) + "x" for values in found] if found else ["-", "-"]
            lines.append(f"| {s['family']} | {row.name} | {spread(row.latency_ms, 3)} | "
                         f"{statistics.median(row.p90_ms):.3f} | {spread(row.images_per_sec, 0)} | "
                         f"{versus[0]} | {versus[1]} |")
    return "\n".join(lines)


def csv_text(rows: list[Row], summaries: list[dict]) -> str:
    by_model = {s["model"]: s for s in summaries}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["model", "family", "params", "macs", "preset", "top1", "top5", "format", "bytes",
                     "latency_ms_median", "p90_ms_median", "images_per_sec_median", "batch1_vs_pytorch_median",
                     f"batch{BATCH}_vs_pytorch_median"])
    for row in rows:
        s = by_model[row.model]
        found = ratios(row, rows)
        writer.writerow([row.model, s["family"], s["params"], s["macs"], s["preset"] or "", s["top1"] or "",
                         s["top5"] or "", row.name, row.bytes or "", f"{statistics.median(row.latency_ms):.4f}",
                         f"{statistics.median(row.p90_ms):.4f}", f"{statistics.median(row.images_per_sec):.1f}",
                         f"{statistics.median(found[0]):.3f}" if found else "",
                         f"{statistics.median(found[1]):.3f}" if found else ""])
    return out.getvalue()


def plot(points: list[tuple[str, float, float]], xlabel: str, title: str, path: Path) -> None:
    from zoo.studies.figures import pyplot, save_figure

    figure, axes = pyplot().subplots(figsize=(7, 5))
    axes.scatter([x for _, x, _ in points], [y for _, _, y in points])
    for label, x, y in points:
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("CIFAR-10 test top-1 (%)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    save_figure(figure, path)


def commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent)
    return found.stdout.strip() or "unknown"


def write_report(out: Path, measured: dict, study: dict[str, dict]) -> None:
    """README.md, comparison.csv, comparison.json and the plots in `out`, from `measured` (what main
    measured, as comparison.json holds it) and the equal-budget study's rows per config."""
    summaries = [{**summary, "study": study.get(summary["model"])} for summary in measured["models"]]
    rows = [Row(row["model"], row["format"], None, row["latency_ms"], row["p90_ms"], row["images_per_sec"],
                row["bytes"]) for row in measured["rows"]]
    trained = [s for s in summaries if s["top1"] is not None]
    points_latency = []
    for s in trained:
        best = fastest(rows, s["model"])
        points_latency.append((f"{s['family']} ({best.name})", statistics.median(best.latency_ms),
                               100 * s["top1"]))
    if trained:
        plot([(s["family"], s["macs"], 100 * s["top1"]) for s in trained], "MACs per image (log scale)",
             "Accuracy against compute", out / "accuracy_vs_macs.png")
        plot(points_latency, "batch-1 latency of the fastest format, ms (log scale)", "Accuracy against latency",
             out / "accuracy_vs_latency.png")
    differences = ", ".join(f"{s['family']} {s['torch_max_difference']:.1e}" for s in summaries)
    text = [
        "# The classic families on CIFAR-10, side by side",
        "",
        f"Measured by `{measured['command']}` (benchmarks/comparison.py) at commit {measured['commit']} on "
        f"{measured['date']}, on **{measured['machine']}**, idle. Inference: median (min-max) over "
        f"{measured['rounds']} interleaved rounds; the ratios are to the faster PyTorch eager layout of the same "
        "round (above 1: faster than PyTorch).",
        "",
        "Test top-1 is the preset's card: evaluate.py on the published model, CIFAR-10's whole test split "
        "(10,000 images), one seed. A config without a preset yet is measured for speed and size with its "
        "random initialisation."
        + (" The equal-budget columns are the study's ([equal_budget](../ablations/equal_budget/results.md)): "
           "the same recipe and the same training time for every family, mean ± standard deviation over its "
           "seeds." if study else ""),
        "",
        "## Families",
        "",
        families_table(summaries),
        "",
        "Sizes are the exported artifacts on disk (the SavedModel folder in all).",
        "",
        "## Inference",
        "",
        "PyTorch eager runs the same network (zoo.models.torch_ops.TorchTwin, the preset's weights copied in); "
        f"its largest probability difference from the SavedModel on {BATCH} random images: {differences}.",
        "",
        inference_table(rows, summaries),
    ]
    if trained:
        text += ["", "![accuracy against MACs](accuracy_vs_macs.png) ![accuracy against latency]"
                 "(accuracy_vs_latency.png)"]
    text += [f"\nSkipped: {line}" for line in measured["skipped"]]
    files.write_atomic(out / "README.md", "\n".join(text) + "\n")
    files.write_atomic(out / "comparison.csv", csv_text(rows, summaries))
    files.write_atomic(out / "comparison.json", json.dumps(measured, indent=1) + "\n")
    print(families_table(summaries) + "\n\n" + inference_table(rows, summaries))


def measure_all(models: list[str], rounds: int) -> dict:
    """Every model exported and measured, interleaved: what comparison.json holds."""
    import_tensorflow_quietly()
    from zoo.models.config import load_model_config

    skipped: list[str] = []
    rows: list[Row] = []
    summaries = []
    with tempfile.TemporaryDirectory(prefix="zoo-comparison-") as folder:
        batches = {}
        for model in models:
            preset = cifar10_preset(model)
            print(f"exporting {model} ({preset or 'no preset yet'})", flush=True)
            model_rows = build_rows(model, Path(folder), skipped, preset, twin_with_weights(model, preset),
                                    diagnostics=False)
            shape = load_model_config(model).input_shape
            batches[model] = np.random.default_rng(1).integers(0, 256, (BATCH, *shape), np.uint8)
            summaries.append(model_summary(model, preset, model_rows, agreement(model_rows, batches[model])))
            rows += model_rows
        for round_ in range(rounds):
            print(f"round {round_ + 1} of {rounds}", flush=True)
            for row in rows:
                measure(row, batches[row.model], seconds=1.0)
    return {"machine": describe_machine(), "date": datetime.date.today().isoformat(), "commit": commit(),
            "rounds": rounds, "skipped": skipped, "models": summaries,
            "rows": [{"model": row.model, "format": row.name, "bytes": row.bytes, "latency_ms": row.latency_ms,
                      "p90_ms": row.p90_ms, "images_per_sec": row.images_per_sec} for row in rows]}


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="docs/comparison", help="the folder the report is written to")
    parser.add_argument("--study", help="the equal-budget study's results.csv, for its per-family columns")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: rewrite the report from OUT/comparison.json (with --study's columns)")
    args = parser.parse_args(argv)
    models = checked_models(args.models, MODELS)
    if not models:
        raise ZooError(f"--models: expected at least one of {', '.join(MODELS)}, received {args.models!r}")
    if args.rounds < 1:
        raise ZooError(f"--rounds: expected a positive number, received {args.rounds}")
    out = Path(args.out)
    try:  # before minutes of measuring, not after
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ZooError(f"--out: cannot write the report to {out} ({error.strerror})") from None
    study = read_study(Path(args.study)) if args.study else {}
    started = time.perf_counter()
    if args.report_only:
        try:
            measured = json.loads((out / "comparison.json").read_text())
        except (OSError, ValueError) as error:
            raise ZooError(f"--report-only: expected a comparison.json this script wrote in {out}, "
                           f"received {describe_exception(error)}") from None
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ZooError("the comparison needs PyTorch for its reference rows: pip install -e '.[bench]'") from None
        measured = measure_all(models, args.rounds)
        measured["command"] = " ".join(["python benchmarks/comparison.py", *(sys.argv[1:] if argv is None else argv)])
    write_report(out, measured, study)
    print(f"\nwrote {out}/README.md, comparison.csv, comparison.json and the plots; "
          f"{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
