"""Ablation sweeps: a base experiment, axes over any config key, one normal run per variant, a report.

An ablation file names `experiment` (a path relative to it, or a shipped experiment's name), optional
`set` (overrides for every variant, such as short training), `axes` (dotted keys, layers addressed by
name, each with a list of values), `mode` (`grid`, the default; `one_at_a_time`: each axis varied
alone, the others at their first value; `zip`: the axes' i-th values together, with optional `labels` naming each
variant, the first being the baseline the others are compared with) and `seeds` (train each variant
once per seed; see zoo.studies.repeats).
`train.py ABLATION.yaml --workdir DIR` runs each variant in DIR/runs/NAME (DIR/runs/NAME/seed-N
with seeds), skipping runs that already finished, then writes results.csv (one row per run),
results.md (with seeds: mean and standard deviation per variant, and per axis whether its
differences exceed the seeds' spread), TensorBoard HParams data (DIR/hparams) and plots (accuracy
against kernel size, one line per other setting; accuracy against MACs; error bars with seeds).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any, Literal

from zoo.common import files, locks
from zoo.common.errors import ConfigError
from zoo.common.schema import build_dataclass
from zoo.common.shipped import config_path
from zoo.common.yamlfiles import load_yaml
from zoo.experiment import load_experiment
from zoo.models.analysis import analyze
from zoo.studies import repeats

RESULT_COLUMNS = ["output_size", "receptive_field", "kernel_extent", "layer_params", "layer_macs", "params", "macs",
                  "train_accuracy", "eval_accuracy", "images_per_sec", "wall_seconds", "status"]


@dataclasses.dataclass(frozen=True)
class Ablation:
    experiment: str
    axes: dict[str, Any]
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    mode: Literal["grid", "one_at_a_time", "zip"] = "grid"
    seeds: tuple[int, ...] = ()  # empty: one run per variant, with the experiment's own seed
    description: str = ""
    labels: tuple[str, ...] = ()  # zip mode only: a readable name per variant, for the report


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str  # its run directory
    values: dict[str, Any]  # axis key -> value
    label: str = ""  # the ablation's name for it, when it gives one


def load_ablation(path: str | Path) -> tuple[Ablation, Path]:
    """The checked ablation in `path` and the path of its base experiment."""
    path = Path(path)
    try:
        ablation = build_dataclass(Ablation, load_yaml(path))
        for key, values in ablation.axes.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"expected a non-empty list of values, received {values!r}", key=f"axes.{key}")
        expand(ablation)  # axes of unequal length in zip mode, a label per variant: said before any training
    except ConfigError as error:
        raise error.located(str(path)) from None
    try:
        experiment = config_path(ablation.experiment, "experiment", path.parent).resolve()
    except ConfigError as error:
        raise error.located(str(path), key_prefix="experiment") from None
    if not experiment.exists():
        raise ConfigError(f"experiment {ablation.experiment!r} not found (looked for {experiment})", source=str(path),
                          key="experiment")
    return ablation, experiment


def short_name(key: str) -> str:
    """An axis's column name: the key's last part (`model.layers.conv1.kernel_size` -> `kernel_size`)."""
    return key.rsplit(".", 1)[-1]


def expand(ablation: Ablation) -> list[Variant]:
    """Every variant: the full grid, each axis alone with the others at their first value, or (`zip`) the
    axes' i-th values together, for pairs a grid cannot express (a 7x7 against three stacked 3x3)."""
    keys = list(ablation.axes)
    if ablation.mode == "grid":
        combos = [dict(zip(keys, values)) for values in itertools.product(*ablation.axes.values())]
    elif ablation.mode == "zip":
        lengths = {key: len(values) for key, values in ablation.axes.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"mode zip pairs the axes' values in order, so expected lists of one length, received "
                              f"lengths {lengths}", key="axes")
        combos = [dict(zip(keys, values)) for values in zip(*ablation.axes.values())]
        if ablation.labels and len(ablation.labels) != len(combos):
            raise ConfigError(f"expected one label per variant ({len(combos)}), received {len(ablation.labels)}",
                              key="labels")
    else:
        baseline = {key: values[0] for key, values in ablation.axes.items()}
        combos = [baseline] + [{**baseline, key: value} for key in keys for value in ablation.axes[key][1:]]
    if ablation.labels and ablation.mode != "zip":
        raise ConfigError(f"labels name the variants of mode zip, received mode {ablation.mode!r}", key="labels")
    if len({short_name(k) for k in keys}) != len(keys):
        raise ConfigError("two axes end in the same key; their columns would collide", key="axes")
    labels = ablation.labels or [""] * len(combos)
    return [Variant("_".join(f"{short_name(k)}-{re.sub(r'[^A-Za-z0-9.]+', '', str(v))}" for k, v in combo.items()),
                    combo, label) for combo, label in zip(combos, labels)]


def varied_layer(ablation: Ablation) -> str | None:
    """The first layer an axis addresses (`model.layers.NAME....`), whose output the report describes."""
    for key in ablation.axes:
        parts = key.split(".")
        if parts[:2] == ["model", "layers"] and len(parts) >= 4:
            return parts[2]
    return None


def _overrides(mapping: dict[str, Any]) -> list[str]:
    return [f"{key}={json.dumps(value)}" for key, value in mapping.items()]


def describe_layer(experiment, summary: dict[str, Any], layer: str | None) -> dict[str, Any]:
    """The varied layer's analytic output size, receptive field, kernel extent, parameters and MACs.

    A layer with `repeat` counts all its blocks: three stacked 3x3 convolutions have the kernel
    extent (7) and the summed parameters of the stack.
    """
    if layer is None:
        return {}
    config = experiment.model_config().with_overrides(tuple(summary["input_shape"]), summary["num_classes"])
    rows = analyze(config).rows
    indices = [i for i, r in enumerate(rows) if r.name == layer or r.layer == layer]
    last, before = rows[indices[-1]], rows[indices[0] - 1] if indices[0] else None
    rf_in, jump_in = (before.receptive_field[0], before.jump[0]) if before else (1, 1)
    return {"output_size": last.output_shape[:2], "receptive_field": last.receptive_field[0],
            "kernel_extent": (last.receptive_field[0] - rf_in) // jump_in + 1,
            "layer_params": sum(rows[i].params for i in indices), "layer_macs": sum(rows[i].macs for i in indices)}


def run_ablation(path: str | Path, overrides: list[str] = (), workdir: str | Path | None = None) -> list[dict]:
    """Runs (or resumes) every variant of the ablation in `path`; writes and returns the result rows."""
    import keras

    from zoo.training.trainer import train

    ablation, experiment_path = load_ablation(path)
    workdir = Path(workdir or Path("runs") / "ablations" / Path(path).stem / time.strftime("%Y%m%d-%H%M%S")).resolve()
    variants = expand(ablation)
    layer = varied_layer(ablation)
    with locks.exclusive(workdir, "ablation directory"):  # one sweep per directory; each variant locks its run too
        print(f"{Path(path).stem}: {len(variants)} variants of {experiment_path.name} in {workdir}")
        rows = []
        runs = [(variant, seed) for variant in variants for seed in (ablation.seeds or [None])]
        for number, (variant, seed) in enumerate(runs, 1):
            print(f"\n[{number}/{len(runs)}] {variant.name}{'' if seed is None else f' seed {seed}'}")
            row = {**({"variant": variant.label} if variant.label else {}),
                   **{short_name(k): v for k, v in variant.values.items()}}
            seeded = {} if seed is None else {"train.seed": seed}
            if seed is not None:
                row["seed"] = seed
            try:
                experiment = load_experiment(experiment_path, [*_overrides(ablation.set), *_overrides(variant.values),
                                                               *_overrides(seeded), *overrides])
                run_dir = workdir / "runs" / variant.name
                summary = train(experiment, run_dir if seed is None else run_dir / f"seed-{seed}")
            except ConfigError as error:  # an impossible variant (a size reaching zero) is a result, not a crash
                print(f"skipped: {error.message}")
                rows.append({**row, "status": f"invalid: {error.message}"})
                continue
            finally:
                keras.backend.clear_session()
            rows.append({**row, **describe_layer(experiment, summary, layer), "params": summary["params"],
                         "macs": summary["macs"], "train_accuracy": summary["metrics"]["train_accuracy"],
                         "eval_accuracy": summary["metrics"]["eval_accuracy"],
                         "images_per_sec": summary["train_images_per_sec"], "wall_seconds": summary["wall_seconds"],
                         "status": "ok"})
        write_report(workdir, Path(path).stem, ablation, result_columns(ablation), rows)
        print(f"\nresults: {workdir / 'results.md'}")
        return rows


def result_columns(ablation: Ablation) -> list[str]:
    """results.csv's columns: the variant's label, its axes, its seed, then what each run measured."""
    return ((["variant"] if ablation.labels else []) + [short_name(k) for k in ablation.axes]
            + (["seed"] if ablation.seeds else []) + RESULT_COLUMNS)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, list):
        return "x".join(map(str, value))
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def write_report(workdir: Path, name: str, ablation: Ablation, columns: list[str], rows: list[dict]) -> None:
    """results.csv (one row per run), results.md, TensorBoard HParams and the plots."""
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(v).replace(",", "") if k != "status" else v for k, v in r.items()} for r in rows)
    files.write_atomic(workdir / "results.csv", text.getvalue())
    axes = [short_name(k) for k in ablation.axes]
    lines = [f"# Ablation `{name}`", "", ablation.description.strip(), "",
             f"Base experiment `{ablation.experiment}`, {ablation.mode.replace('_', ' ')} over "
             + ", ".join(f"`{k}` {v}" for k, v in ablation.axes.items())
             + (", with " + ", ".join(f"`{k}={v}`" for k, v in ablation.set.items()) if ablation.set else "")
             + (f", each variant trained with seeds {list(ablation.seeds)}" if ablation.seeds else "") + ".", ""]
    summaries = repeats.summarize(rows, axes)
    if ablation.seeds:
        lines += _seeded_table(axes, summaries, rows)
        if ablation.mode == "zip":
            lines += ["", "Is each difference beyond the noise?", ""]
            lines += [f"- {d.sentence(_variant_name(d.other, axes), _variant_name(d.reference, axes))}"
                      for d in repeats.versus_first(summaries)]
        else:
            lines += ["", "Does each axis matter beyond the noise?", ""]
            lines += [f"- {effect.sentence()}" for effect in repeats.axis_effects(summaries, axes)]
    else:
        shown = [c for c in columns if any(r.get(c) is not None for r in rows)]
        lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in shown) + " |" for r in rows]
    plots = write_plots(workdir, axes, summaries, by_variant=ablation.mode == "zip")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    files.write_atomic(workdir / "results.md", "\n".join(lines) + "\n")
    write_hparams(workdir / "hparams", axes + (["seed"] if ablation.seeds else []), rows)


def _variant_name(summary: repeats.VariantSummary, axes: list[str]) -> str:
    """The variant's label, or its axis values when the ablation gives none."""
    return summary.first.get("variant") or ", ".join(f"{a}={_cell(summary.values[a])}" for a in axes)


def _seeded_table(axes: list[str], summaries: list[repeats.VariantSummary], rows: list[dict]) -> list[str]:
    """One line per variant: eval top-1 as mean ± standard deviation over its seeds, then what seeds don't change
    (the varied layer's columns only when an axis addresses a layer)."""
    fixed = [c for c in ("output_size", "receptive_field", "kernel_extent", "layer_params", "layer_macs", "params",
                         "macs") if any(s.first.get(c) is not None for s in summaries)]
    labelled = any(s.first.get("variant") for s in summaries)
    header = [*(["variant"] if labelled else []), *axes, "runs", "eval_accuracy (mean ± std)", *fixed]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        cells = ([summary.first["variant"]] if labelled else []) + [_cell(summary.values[a]) for a in axes]
        cells += [str(summary.runs), f"{summary.mean:.4f} ± {summary.std:.4f}"]
        lines.append("| " + " | ".join(cells + [_cell(summary.first.get(c)) for c in fixed]) + " |")
    failed = {", ".join(f"{a}={r[a]}" for a in axes): r["status"] for r in rows if r.get("status") != "ok"}
    if failed:
        lines += ["", "Not trained: " + "; ".join(f"{variant}: {status}" for variant, status in failed.items()) + "."]
    return lines


def write_plots(workdir: Path, axes: list[str], summaries: list[repeats.VariantSummary],
                by_variant: bool = False) -> list[Path]:
    """Accuracy against the first axis (kernel_size when swept), one line per other setting, or (`by_variant`,
    for zip ablations) one bar per variant; accuracy against MACs when the variants' MACs differ.

    With several runs per variant, each point is their mean and its error bar their standard deviation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summaries:
        return []
    written = []
    if by_variant:
        figure, plot = plt.subplots(figsize=(max(6, 1.3 * len(summaries)), 4))
        names = [_variant_name(s, axes) for s in summaries]
        plot.bar(range(len(summaries)), [s.mean for s in summaries], yerr=[s.std for s in summaries], capsize=4)
        plot.set_xticks(range(len(summaries)), names, rotation=20, ha="right", fontsize=8)
        plot.set_ylabel("eval accuracy")
        plot.grid(alpha=0.3, axis="y")
        written.append(_save(figure, workdir / "accuracy_by_variant.png"))
    else:
        written.append(_accuracy_against_axis(workdir, axes, summaries))
    if len({s.first.get("macs") for s in summaries}) > 1:
        written.append(_accuracy_against_macs(workdir, axes, summaries))
    return written


def _accuracy_against_axis(workdir: Path, axes: list[str], summaries: list[repeats.VariantSummary]) -> Path:
    import matplotlib.pyplot as plt

    x_axis = "kernel_size" if "kernel_size" in axes else axes[0]
    others = [a for a in axes if a != x_axis]
    figure, plot = plt.subplots(figsize=(6, 4))
    for key, group in itertools.groupby(sorted(summaries, key=lambda s: [str(s.values[a]) for a in others]),
                                        key=lambda s: tuple(s.values[a] for a in others)):
        group = list(group)
        label = ", ".join(f"{a}={v}" for a, v in zip(others, key)) or "accuracy"
        plot.errorbar([str(s.values[x_axis]) for s in group], [s.mean for s in group], yerr=[s.std for s in group],
                      marker="o", capsize=3, label=label)
    plot.set_xlabel(x_axis)
    plot.set_ylabel("eval accuracy")
    plot.legend(fontsize=7)
    plot.grid(alpha=0.3)
    return _save(figure, workdir / f"accuracy_vs_{x_axis}.png")


def _accuracy_against_macs(workdir: Path, axes: list[str], summaries: list[repeats.VariantSummary]) -> Path:
    import matplotlib.pyplot as plt

    figure, plot = plt.subplots(figsize=(6, 4))
    for s in summaries:
        plot.errorbar(s.first["macs"], s.mean, yerr=s.std, marker="o", capsize=3)
        plot.annotate(_variant_name(s, axes), (s.first["macs"], s.mean), fontsize=7)
    plot.set_xscale("log")
    plot.set_xlabel("MACs per image")
    plot.set_ylabel("eval accuracy")
    plot.grid(alpha=0.3)
    return _save(figure, workdir / "accuracy_vs_macs.png")


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    files.write_atomic(path, buffer.getvalue())
    return path


def write_hparams(directory: Path, axes: list[str], rows: list[dict]) -> None:
    """One TensorBoard HParams trial per finished variant, so the sweep can be browsed there."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    for r in rows:
        if r.get("status") != "ok":
            continue
        trial = "_".join(f"{a}-{r[a]}" for a in axes)  # with seeds, `seed` is among the axes: one trial per run
        with tf.summary.create_file_writer(str(directory / trial)).as_default():
            hp.hparams({a: r[a] if isinstance(r[a], (int, float, bool)) else str(r[a]) for a in axes}, trial_id=trial)
            for metric in ("eval_accuracy", "train_accuracy", "images_per_sec"):
                tf.summary.scalar(metric, r[metric], step=1)

