"""Two classifiers on the same test images: is the difference in top-1 above the noise? (issue 38)

    python benchmarks/paired.py FIRST SECOND [--data cifar10] [--split test] [--json]

FIRST and SECOND are anything `zoo.load` opens (presets, run directories, artifacts) whose classes are the
dataset's, in its order; one of other classes is refused before any image is read. Both score every
image of the split; the images only one of them gets right decide (McNemar's exact test: under "equally
good", each such image is a fair coin's toss between them). The difference is called above the noise
when the two-sided p-value is below 0.05. Two presets scored separately each carry a binomial standard
error of about 0.27 points at 92% over 10,000 images, but most images are right or wrong for both: only
the images they split carry the difference, and the paired test weighs it against those alone.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from zoo.deploy.classifier import Classifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zoo.common.errors import ZooError, exits_cleanly, few  # noqa: E402

THRESHOLD = 0.05


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided p-value of `only_first` against `only_second` discordant images under a fair coin."""
    n, k = only_first + only_second, min(only_first, only_second)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(first: np.ndarray, second: np.ndarray) -> dict:
    """The paired comparison of two boolean arrays, each image right (True) or wrong for one classifier."""
    only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
    p = mcnemar_exact(only_first, only_second)
    return {"images": int(first.size), "first_top1": float(first.mean()), "second_top1": float(second.mean()),
            "only_first": only_first, "only_second": only_second, "p_value": p, "above_noise": p < THRESHOLD}


def right_or_wrong(classifier: "Classifier", images: np.ndarray, labels: np.ndarray,
                   batch: int = 500) -> np.ndarray:
    predicted = np.concatenate([classifier.predict(images[i:i + batch]).argmax(-1)
                                for i in range(0, len(images), batch)])
    return predicted == labels


def split_images(data: str, split: str, classifiers: list["Classifier"]) -> tuple[np.ndarray, np.ndarray]:
    """Every (uint8 image, label) of the split, read as the trainer reads it (TFDS_DATA_DIR), once each
    classifier is known to predict the dataset's classes in the dataset's order."""
    from zoo.data.sources import class_names, dataset_builder, load_split
    from zoo.experiment import DataConfig

    config = DataConfig(name=data)
    builder = dataset_builder(config)
    expected = class_names(builder, config)
    for classifier in classifiers:
        if list(classifier.class_names) != list(expected):
            raise ZooError(f"expected classifiers of {data}'s {len(expected)} classes ({few(expected, 5)}), "
                           f"received {classifier.source}, whose {len(classifier.class_names)} are "
                           f"{few(classifier.class_names, 5)}")
    dataset = load_split(builder, config, split, training=False, seed=0).dataset
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.stack(images), np.asarray(labels)


def describe(first: str, second: str, result: dict) -> str:
    difference = 100 * (result["second_top1"] - result["first_top1"])
    verdict = "above the noise" if result["above_noise"] else "not above the noise"
    return (f"{second} against {first} on {result['images']:,} images: top-1 {result['second_top1']:.2%} against "
            f"{result['first_top1']:.2%} ({difference:+.2f} points); right only for {second}: "
            f"{result['only_second']}, only for {first}: {result['only_first']}; McNemar exact p = "
            f"{result['p_value']:.3g}: {verdict} (p < {THRESHOLD})")


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", help="a preset, run directory or artifact")
    parser.add_argument("second", help="another, scored on the same images")
    parser.add_argument("--data", default="cifar10", help="a TFDS dataset (default: cifar10)")
    parser.add_argument("--split", default="test", help="a split, TFDS slicing allowed (default: test)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    import zoo

    classifiers = [zoo.load(source) for source in (args.first, args.second)]  # a wrong name before the data
    images, labels = split_images(args.data, args.split, classifiers)
    first, second = (right_or_wrong(classifier, images, labels) for classifier in classifiers)
    result = {"first": args.first, "second": args.second, "data": args.data, "split": args.split,
              **paired(first, second)}
    print(json.dumps(result, indent=1) if args.json else describe(args.first, args.second, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
