"""What checking a folder's images costs before training: `data.bad_images` on a CIFAR-10-sized folder.

    python benchmarks/image_check.py [--folder DIR] [--repeats 3]

Without --folder, CIFAR-10 (from TFDS_DATA_DIR) is written as FOLDER/SPLIT/CLASS/*.png into a
temporary directory first (about a minute). Prints the check's seconds for the training split,
median and range, and the images it checks per second; the ratio to a training epoch is what
benchmarks/README.md records.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from zoo.data.sources import check_folder_split, dataset_builder  # noqa: E402
from zoo.experiment import DataConfig  # noqa: E402


def write_cifar10_folder(root: Path) -> None:
    import tensorflow_datasets as tfds
    from PIL import Image

    builder = tfds.builder("cifar10")
    names = builder.info.features["label"].names
    for split in ("train", "test"):
        for index, (image, label) in enumerate(tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True))):
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{index:05d}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", help="a FOLDER/SPLIT/CLASS/*.png dataset (default: CIFAR-10 written to a temp dir)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.folder) if args.folder else Path(scratch)
        if not args.folder:
            if "TFDS_DATA_DIR" not in os.environ:
                print("needs --folder or TFDS_DATA_DIR with cifar10 prepared", file=sys.stderr)
                return 2
            write_cifar10_folder(folder)
        config = DataConfig(folder=str(folder))
        seconds = []
        for _ in range(args.repeats):
            builder = dataset_builder(config)
            started = time.perf_counter()
            check_folder_split(builder, config, "train")
            seconds.append(time.perf_counter() - started)
        images = builder.info.splits["train"].num_examples
    median = statistics.median(seconds)
    print(f"checked {images:,} training images: median {median:.2f} s (range {min(seconds):.2f}-{max(seconds):.2f}), "
          f"{images / median:,.0f} images/s, {len(seconds)} repeats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
