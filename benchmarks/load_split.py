"""Loading a split into memory (zoo.data.sources.load_split, then zoo.data.pipeline.in_memory): the
batched record reader of zoo.data.records against TFDS's per-example reader, interleaved in one
process, on the same split. Each repetition also checks that both give the same images and labels.
With `--classes` the split is a selection (data.classes), whose labels load_split reads first, by
the reader timed. Run it on an idle machine.

    TFDS_DATA_DIR=../shared/tfds python benchmarks/load_split.py [--datasets mnist cifar10] [--repeats 3]
        [--classes 3 8]
"""
import argparse
import contextlib
import os
import statistics
import sys
import time
import unittest.mock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import numpy as np  # noqa: E402

from zoo.common.cpu import this_cpu  # noqa: E402
from zoo.data.pipeline import in_memory  # noqa: E402
from zoo.data.preprocess import Preprocessing  # noqa: E402
from zoo.data import sources  # noqa: E402
from zoo.data.sources import dataset_builder, load_split  # noqa: E402
from zoo.experiment import DataConfig  # noqa: E402


def load(builder, config: DataConfig, split: str, preprocessing: Preprocessing, reader: str) -> list[np.ndarray]:
    """The split's images and labels, read with the record reader or, as for a split it does not read, by TFDS."""
    tfds_only = unittest.mock.patch.object(sources, "record_reader", lambda *args: None)
    with contextlib.nullcontext() if reader == "record reader" else tfds_only:
        source = load_split(builder, config, split, training=True, seed=0)
    return [np.asarray(tensor) for tensor in in_memory(source, preprocessing)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classes", nargs="+", help="load only these classes (data.classes)")
    args = parser.parse_args()
    print(f"CPU: {this_cpu().model}; TFDS_DATA_DIR={os.environ.get('TFDS_DATA_DIR')}")
    for name in args.datasets:
        config = DataConfig(name=name, data_dir=os.environ.get("TFDS_DATA_DIR"),
                            classes=tuple(args.classes) if args.classes else None)
        builder = dataset_builder(config)
        split = load_split(builder, config, args.split, training=True, seed=0)
        if split.records is None:
            print(f"{name}: TFDS stores it in a way the record reader does not read")
            continue
        preprocessing = Preprocessing((32, 32), builder.info.features["image"].shape[-1], (0.5,), (0.25,))
        seconds: dict[str, list[float]] = {"record reader": [], "TFDS reader": []}
        for _ in range(args.repeats):
            loaded = {}
            for reader in seconds:
                # A split read anew each time: TFDS caches a small split in memory after its first pass,
                # and a run reads each split once.
                started = time.perf_counter()
                loaded[reader] = load(builder, config, args.split, preprocessing, reader)
                seconds[reader].append(time.perf_counter() - started)
            first, second = loaded.values()
            assert all(np.array_equal(a, b) for a, b in zip(first, second)), f"{name}: the readers disagree"
        for reader, times in seconds.items():
            print(f"{name} {args.split}{' classes ' + ','.join(args.classes) if args.classes else ''} "
                  f"({split.examples:,} images at 32x32): {reader} "
                  f"{statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f})")
        ratio = [b / a for a, b in zip(*seconds.values())]
        print(f"{name}: TFDS reader / record reader {min(ratio):.1f}-{max(ratio):.1f}x per repetition")
    return 0


if __name__ == "__main__":
    sys.exit(main())
