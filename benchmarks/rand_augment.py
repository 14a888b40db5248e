"""RandAugment on whole batches: the zoo's (one of Keras's eleven operations run per draw, tf.switch_case)
against Keras's RandAugment layer (which computes all eleven and keeps one), inside tf.data as training
uses them. Interleaved repetitions; run it on an idle machine.

    python benchmarks/rand_augment.py [--repeats 3] [--batches 40]
"""
import argparse
import statistics
import time

import numpy as np
import tensorflow as tf
import keras

from zoo.common.cpu import this_cpu
from zoo.data.augment import BatchAugmentation
from zoo.data.preprocess import Preprocessing
from zoo.experiment import AugmentConfig, RandAugmentConfig


def pipelines(batch_size: int) -> dict[str, tf.data.Dataset]:
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8))
    labels = tf.one_hot(tf.range(batch_size) % 10, 10)
    source = tf.data.Dataset.from_tensors((images, labels)).repeat()
    zoo = BatchAugmentation(AugmentConfig(rand_augment=RandAugmentConfig(2, 9)),
                            Preprocessing((32, 32), 3, (0.0,), (1.0,)), seed=0)
    layer = keras.layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.9, seed=0)
    return {"zoo (switch_case)": source.map(lambda x, y: zoo(x, y)),
            "keras.layers.RandAugment": source.map(lambda x, y: (layer(tf.cast(x, tf.float32), training=True), y))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    iterators = {name: iter(dataset.prefetch(1)) for name, dataset in pipelines(args.batch_size).items()}
    for iterator in iterators.values():
        for _ in range(3):
            next(iterator)  # tracing
    rates: dict[str, list[float]] = {name: [] for name in iterators}
    for _ in range(args.repeats):
        for name, iterator in iterators.items():
            started = time.perf_counter()
            for _ in range(args.batches):
                next(iterator)
            rates[name].append(args.batches * args.batch_size / (time.perf_counter() - started))
    print(f"CPU: {this_cpu().describe()}; RandAugment num_ops 2, magnitude 9, batch {args.batch_size} of 32x32x3")
    for name, values in rates.items():
        print(f"{name:<26} {statistics.median(values):>9,.0f} images/s ({min(values):,.0f}-{max(values):,.0f})")
    names = list(rates)
    print(f"ratio: {statistics.median(rates[names[0]]) / statistics.median(rates[names[1]]):.1f}x")


if __name__ == "__main__":
    main()
