"""Where a small model's training step goes beyond its arithmetic: one lever at a time, in one run.

    python benchmarks/step_overhead.py [--model lenet5] [--repeats 3]

LeNet-5's step is about 1.5 ms of convolutions and matmuls inside several ms of per-step work
(issue 20). Each row is the in-memory step of `make bench` with one cost taken away — Keras's
per-call dispatch (N steps per call), the accuracy metrics, the optimizer's schedule and weight
decay — or the trainer end to end with one and with `auto` steps per call (callbacks, progress,
the input pipeline), beside PyTorch's step when torch is installed. Rows are built first, then
the repetitions interleaved; median and range in training images/s. Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import BATCH_SIZE, MODELS, SECONDS_PER_REPEAT, TRAINER_STEPS, describe_machine, quietly, timed  # noqa: E402
from zoo.common.errors import ZooError, exits_cleanly, unknown  # noqa: E402
from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402


def build(model: str) -> dict[str, Callable[[], float]]:
    """Row label -> one repetition (images/s); every row built and warmed up."""
    import os

    import zoo_rows

    seconds = SECONDS_PER_REPEAT[model]
    step = functools.partial(zoo_rows.InMemoryStep, model, BATCH_SIZE)
    rows = {
        "step: as train.py compiles it, 1 step per call": timed(step().run, seconds),
        "step: 4 steps per call": timed(step(steps_per_execution=4).run, seconds),
        "step: 16 steps per call": timed(step(steps_per_execution=16).run, seconds),
        "step: no accuracy metrics": timed(step(metrics=False).run, seconds),
        "step: plain SGD (no schedule, no weight decay)": timed(step(optimizer="plain").run, seconds),
        "step: 16 per call, no metrics, plain SGD": timed(step(steps_per_execution=16, metrics=False,
                                                               optimizer="plain").run, seconds),
    }
    try:
        import reference_torch
    except ImportError:
        print("skipped: PyTorch row (torch is not installed: pip install -e '.[bench]')")
    else:
        rows["pytorch channels_last step"] = timed(reference_torch.TorchTrainer(model, BATCH_SIZE, bf16=False).run,
                                                   seconds)
    if os.environ.get("TFDS_DATA_DIR"):
        for setting in ("1", "auto"):
            trainer = zoo_rows.Trainer(model, BATCH_SIZE, overrides=(f"train.steps_per_execution={setting}",))
            rows[f"trainer end to end, steps_per_execution {setting}"] = quietly(
                functools.partial(trainer.images_per_sec, TRAINER_STEPS[model]))
    else:
        print("skipped: trainer rows (TFDS_DATA_DIR is unset: no prepared dataset)")
    return rows


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5", help="resnet20 or lenet5")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.model not in MODELS:
        raise ZooError(f"--model: {unknown('benchmark model', args.model, MODELS)}")
    if args.repeats < 1:
        raise ZooError(f"--repeats: expected a positive number, received {args.repeats}")
    import_tensorflow_quietly()

    rows = build(args.model)
    samples: dict[str, list[float]] = {label: [] for label in rows}
    for repeat in range(args.repeats):
        print(f"repetition {repeat + 1} of {args.repeats}", flush=True)
        for label, measure in rows.items():
            samples[label].append(measure())
    base = statistics.median(samples[next(iter(rows))])
    print(f"\n{args.model}, batch {BATCH_SIZE}, training images/s. Machine: {describe_machine()}\n")
    print("| row | images/s | min-max | / 1 step per call |\n|---|---:|---:|---:|")
    for label, values in samples.items():
        median = statistics.median(values)
        print(f"| {label} | {median:,.0f} | {min(values):,.0f}-{max(values):,.0f} | {median / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
