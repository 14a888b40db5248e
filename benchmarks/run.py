"""`make bench`: the zoo's training speed beside its peers and the CPU's matmul ceiling, in one run.

    python benchmarks/run.py [--models resnet20,lenet5] [--repeats 3] [--json PATH]

Every row is built and warmed up first; then the repetitions are interleaved (row 1, row 2, ...,
then again), so a passing load on the machine touches every row alike. Each row reports the median
and the range of its repetitions in training images per second, and the fraction of the fp32
matmul ceiling it reaches (FLOPs per image: 3 x 2 x the zoo's analytic MACs, forward and backward).
Rows that need what is missing (torch: the `bench` extra; TFDS_DATA_DIR: the real datasets) are
skipped with a message. Never run it beside tests or training: a figure taken under load is wrong.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from zoo.common.errors import ZooError, exits_cleanly, unknown  # noqa: E402
from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

MODELS = ("resnet20", "lenet5")
BATCH_SIZE = 128
SECONDS_PER_REPEAT = {"resnet20": 3.0, "lenet5": 1.5}
TRAINER_STEPS = {"resnet20": 120, "lenet5": 400}  # 60 ResNet-20 steps (11 s) gave unstable ratios


def describe_machine() -> str:
    """Cores, the CPU's name and vector extensions, whether oneDNN is on, and the instructions PyTorch's
    own kernels use: what the figures depend on."""
    from zoo.common.cpu import onednn_setting, this_cpu

    onednn, reason = onednn_setting()
    torch = sys.modules.get("torch")
    peer = f", PyTorch's kernels {torch.backends.cpu.get_cpu_capability()}" if torch else ""
    return f"{os.cpu_count()} CPU cores, {this_cpu().describe()}, oneDNN {'on' if onednn else 'off'} ({reason}){peer}"


@dataclasses.dataclass
class Row:
    model: str
    path: str
    precision: str
    xla: str
    measure: Callable[[], float] | None = None  # one repetition -> images/s
    samples: list[float] = dataclasses.field(default_factory=list)

    def as_json(self, flops_per_image: float, ceiling: float) -> dict:
        median = statistics.median(self.samples)
        return {"model": self.model, "path": self.path, "images_per_sec": round(median, 1),
                "min": round(min(self.samples), 1), "max": round(max(self.samples), 1), "precision": self.precision,
                "xla": self.xla, "repeats": len(self.samples),
                "fraction_of_fp32_matmul_ceiling": round(median * flops_per_image / ceiling, 3)}


def matmul_ceiling(repeats: int) -> list[float]:
    """FLOP/s of a 4096x4096 fp32 matmul: what these cores can do at best."""
    import tensorflow as tf

    n = 4096
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    (a @ b).numpy()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        (a @ b).numpy()
        samples.append(2 * n ** 3 / (time.perf_counter() - started))
    return samples


WARM_STEPS = 2  # untimed at the start of every repetition: see `timed`


def timed(run: Callable[[int], float], seconds: float) -> Callable[[], float]:
    """A repetition of about `seconds` of `run(steps) -> seconds taken`, as images/s.

    Each repetition first runs WARM_STEPS untimed: the rows share one process and run in turn, and
    the first steps of a model after the others have run are slower. With them, ResNet-20's step
    went from 448 to 556 images/s in two idle runs of 2026-12-02; why is not known.
    """
    estimate = run(3) / 3
    steps = max(5, round(seconds / estimate))

    def repetition() -> float:
        run(WARM_STEPS)
        return steps * BATCH_SIZE / run(steps)
    return repetition


def quietly(function: Callable[[], float]) -> Callable[[], float]:
    """The trainer prints its progress; a benchmark table should not drown in it."""
    def call() -> float:
        with contextlib.redirect_stdout(io.StringIO()):
            return function()
    return call


def build_rows(model: str, skipped: list[str]) -> list[Row]:
    """Every row of one model, built and warmed up (XLA compiled, data loaded)."""
    import reference_keras
    import zoo_rows

    from zoo.common.cpu import ISA_CAP_VARIABLE, this_cpu

    seconds = SECONDS_PER_REPEAT[model]
    rows = []
    # Without bfloat16 units TensorFlow and PyTorch emulate it, many times slower than float32: on an
    # AVX2 CPU the bf16 rows alone kept `make bench` past 20 minutes. Those rows measure nothing a user
    # of that CPU would run, so they are left out there.
    cpu = this_cpu()
    bf16 = bool(cpu.bfloat16_units)
    if not bf16:
        why = (f"{ISA_CAP_VARIABLE}={cpu.isa_cap} keeps the kernels off this CPU's bfloat16 units"
               if cpu.bfloat16_units_capped else "this CPU has no bfloat16 units")
        skipped.append(f"{model}: mixed_bfloat16 and bf16 autocast rows ({why}: both frameworks would emulate "
                       "bfloat16, many times slower than float32)")

    def add(path: str, precision: str, xla: str, make: Callable[[], Callable[[], float]]) -> None:
        print(f"  building {model}: {path} ({precision}, xla {xla})", flush=True)
        rows.append(Row(model, path, precision, xla, make()))

    step = zoo_rows.InMemoryStep
    add("zoo step, in memory", "float32", "off", lambda: timed(step(model, BATCH_SIZE).run, seconds))
    add("zoo step, in memory", "float32", "whole model",
        lambda: timed(step(model, BATCH_SIZE, xla="whole").run, seconds))
    add("zoo step, in memory", "float32", "per block",
        lambda: timed(step(model, BATCH_SIZE, xla="per_block").run, seconds))
    if bf16:
        add("zoo step, in memory", "mixed_bfloat16", "off",
            lambda: timed(step(model, BATCH_SIZE, precision="mixed_bfloat16").run, seconds))
    add("keras hand-written, in memory", "float32", "off",
        lambda: timed(step(model, BATCH_SIZE, model=reference_keras.MODELS[model]()).run, seconds))
    try:
        import reference_torch
    except ImportError:
        skipped.append(f"{model}: PyTorch rows (torch is not installed: pip install -e '.[bench]')")
    else:
        for precision, autocast in (("float32", False), ("bf16 autocast", True))[:2 if bf16 else 1]:
            trainer = reference_torch.TorchTrainer(model, BATCH_SIZE, bf16=autocast)
            add("pytorch channels_last, in memory", precision, "-", lambda: timed(trainer.run, seconds))
    if not os.environ.get("TFDS_DATA_DIR"):
        skipped.append(f"{model}: input pipeline and trainer rows (TFDS_DATA_DIR is unset: no prepared dataset)")
        return rows
    add("input pipeline alone", "-", "-", lambda: timed(zoo_rows.Pipeline(model, BATCH_SIZE).run, seconds / 4))
    add("input pipeline, every recipe augmentation", "-", "-",
        lambda: timed(zoo_rows.Pipeline(model, BATCH_SIZE, zoo_rows.RECIPE_AUGMENTATION).run, seconds / 4))
    for precision in ("float32", "mixed_bfloat16")[:2 if bf16 else 1]:
        # partial binds this trainer now; a lambda would find the loop's last one when called, and
        # did: until 2026-12-02 both trainer rows timed the mixed_bfloat16 trainer.
        trainer = functools.partial(zoo_rows.Trainer(model, BATCH_SIZE, precision).images_per_sec,
                                    TRAINER_STEPS[model])
        add("zoo trainer end to end (train.py)", precision, "off", lambda: quietly(trainer))
    return rows


def format_table(rows: list[dict], ceiling: list[float], machine: str) -> str:
    lines = [f"Machine: {machine}. fp32 matmul ceiling (4096x4096): {statistics.median(ceiling) / 1e9:,.0f} GFLOP/s "
             f"({min(ceiling) / 1e9:,.0f}-{max(ceiling) / 1e9:,.0f}). Batch {BATCH_SIZE}; training images/s, median "
             f"(min-max) of interleaved repetitions.", "",
             "| model | path | precision | XLA | images/s | min-max | of fp32 ceiling |",
             "|---|---|---|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['path']} | {row['precision']} | {row['xla']} | "
                     f"{row['images_per_sec']:,.0f} | {row['min']:,.0f}-{row['max']:,.0f} | "
                     f"{row['fraction_of_fp32_matmul_ceiling']:.0%} |")
    return "\n".join(lines)


def ratios(rows: list[dict]) -> list[str]:
    """The issue's targets, as ratios within this run."""
    def find(model, path, precision, xla="off"):
        return next((r["images_per_sec"] for r in rows if (r["model"], r["path"], r["precision"]) ==
                     (model, path, precision) and r["xla"] in (xla, "-")), None)

    lines = []
    for model in sorted({r["model"] for r in rows}):
        trainer = find(model, "zoo trainer end to end (train.py)", "float32")
        trainer_bf16 = find(model, "zoo trainer end to end (train.py)", "mixed_bfloat16")
        step = find(model, "zoo step, in memory", "float32")
        torch32 = find(model, "pytorch channels_last, in memory", "float32")
        torch16 = find(model, "pytorch channels_last, in memory", "bf16 autocast")
        pipeline = find(model, "input pipeline alone", "-")
        pairs = [("trainer fp32 / PyTorch fp32", trainer, torch32),
                 ("trainer bf16 / PyTorch bf16", trainer_bf16, torch16),
                 ("trainer / in-memory step (fp32)", trainer, step),
                 ("input pipeline / in-memory step", pipeline, step),
                 ("recipe-augmented pipeline / in-memory step",
                  find(model, "input pipeline, every recipe augmentation", "-"), step),
                 ("step bf16 / step fp32", find(model, "zoo step, in memory", "mixed_bfloat16"), step),
                 ("step XLA whole / off", find(model, "zoo step, in memory", "float32", "whole model"), step),
                 ("step XLA per block / off", find(model, "zoo step, in memory", "float32", "per block"), step)]
        lines += [f"- {model}: {name} = {a / b:.2f}" for name, a, b in pairs if a and b]
    return lines


def checked_models(text: str, known) -> list[str]:
    """--models: comma-separated benchmark models, each one known."""
    models = [model for model in text.split(",") if model]
    for model in models:
        if model not in known:
            raise ZooError(f"--models: {unknown('benchmark model', model, known)}")
    return models


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: resnet20, lenet5")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the rows as a JSON list here")
    args = parser.parse_args(argv)
    models = checked_models(args.models, MODELS)
    if args.repeats < 1:
        raise ZooError(f"--repeats: expected a positive number, received {args.repeats}")
    import_tensorflow_quietly()
    from zoo.models.analysis import analyze
    from zoo.models.config import load_model_config

    started = time.perf_counter()
    skipped: list[str] = []
    rows = [row for model in models for row in build_rows(model, skipped)]
    ceiling = []
    for repeat in range(args.repeats):
        print(f"repetition {repeat + 1} of {args.repeats}", flush=True)
        ceiling += matmul_ceiling(1)
        for row in rows:
            row.samples.append(row.measure())
    flops = {model: 6 * analyze(load_model_config(model)).macs for model in models}
    results = [row.as_json(flops[row.model], statistics.median(ceiling)) for row in rows]
    machine = describe_machine()
    print("\n" + format_table(results, ceiling, machine) + "\n\n" + "\n".join(ratios(results)))
    for line in skipped:
        print(f"skipped: {line}")
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "fp32_matmul_flops": ceiling, "rows": results},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
