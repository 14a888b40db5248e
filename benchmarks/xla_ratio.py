"""XLA on vs off: training images/s of one model in one process, reported as a ratio.

    python benchmarks/xla_ratio.py [MODEL] [--batch-size 128] [--steps 40] [--precision float32]

Synthetic data already in memory, so only the training step is measured; the first steps
(tracing, XLA compilation) are excluded. Wall-clock numbers on a shared machine are noisy, so
the result that matters is the ratio within one run.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo import build_model  # noqa: E402
from zoo.experiment import TrainConfig  # noqa: E402
from zoo.training.compile import compile_model  # noqa: E402


def images_per_sec(model_name: str, xla: bool, batch_size: int, steps: int, precision: str) -> float:
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision)
    model = build_model(model_name)
    compile_model(model, TrainConfig(batch_size=batch_size), steps_per_epoch=steps, xla=xla)
    shape = model.input_shape[1:]
    classes = model.output_shape[-1]
    x = np.random.default_rng(0).normal(size=(batch_size, *shape)).astype("float32")
    y = keras.utils.to_categorical(np.arange(batch_size) % classes, classes)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0)  # tracing and compilation
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    off = images_per_sec(args.model, False, args.batch_size, args.steps, args.precision)
    on = images_per_sec(args.model, True, args.batch_size, args.steps, args.precision)
    print(f"{args.model} on {device}, batch {args.batch_size}, {args.precision}: XLA off {off:,.0f} img/s, "
          f"XLA on {on:,.0f} img/s, on/off = {on / off:.2f}")


if __name__ == "__main__":
    main()
