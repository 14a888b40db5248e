"""`python -m zoo predict SOURCE IMAGE_OR_FOLDER...`: one line per image, unreadable files counted at the end.

Images are read and classified in batches as the folders are walked, so a folder of any size
streams; a progress count goes to stderr when it is a terminal. The closing line says how fast:
images/s from file to answer, and the model's batch-1 latency (zoo.deploy.speed). Exit status 0 when
at least one image was classified, 2 when none could be (each unreadable file is named with its reason).
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from zoo.common import files
from zoo.common.errors import EXIT_USAGE, ZooError
from zoo.deploy.classifier import Classifier, image_files, load_classifier, predict_files
from zoo.deploy.speed import Latency, latency


def one_image_latency(classifier: Classifier) -> Latency:
    """The classifier's batch-1 latency on an image at its own size (no resize): the model's time alone."""
    height, width = classifier.preprocessing.image_size
    return latency(classifier.predict, np.zeros((height, width, classifier.preprocessing.channels), np.uint8),
                   seconds=0.5)


def predict(source: str, images: list[str], *, top: int = 5, batch_size: int = 64, as_json: bool = False,
            csv_path: str | None = None, weights: str | None = None) -> int:
    classifier = load_classifier(source, weights)
    top = min(top, len(classifier.class_names))
    failed: list[tuple[Path, str]] = []
    rows, progress = [], sys.stderr.isatty()
    started = time.perf_counter()
    for count, prediction in enumerate(predict_files(classifier, image_files(images), top=top,
                                                     batch_size=batch_size, failed=failed), start=1):
        rows.append(prediction)
        if not as_json:
            print(f"{prediction.path}  " + "  ".join(f"{name} {p:.4f}" for name, p in prediction.top), flush=True)
        if progress:
            print(f"\r{count} classified, {len(failed)} unreadable", end="", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    if progress:
        print(file=sys.stderr)
    speed = {"images_per_sec": round(len(rows) / seconds, 1) if rows else None,
             "latency": one_image_latency(classifier).as_json() if rows else None}
    if as_json:
        print(json.dumps({"source": classifier.source, "format": classifier.format, "speed": speed,
                          "predictions": [{"path": str(r.path), "top": [{"class": n, "probability": round(p, 6)}
                                                                         for n, p in r.top]} for r in rows],
                          "unreadable": [{"path": str(path), "reason": why} for path, why in failed]}, indent=1))
    if csv_path:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["path", *[f"{kind}{i}" for i in range(1, top + 1) for kind in ("class", "probability")]])
        for r in rows:
            writer.writerow([str(r.path), *[v for name, p in r.top for v in (name, f"{p:.6f}")]])
        with files.reporting_write_errors(csv_path):
            files.write_atomic(csv_path, out.getvalue())
    for path, why in failed:
        print(f"unreadable: {path}: {why}", file=sys.stderr)
    print(f"{len(rows)} image(s) classified with {classifier.source}, {len(failed)} unreadable" + (
        f"; {speed['images_per_sec']:,.1f} images/s from file to answer (the first call's tracing included), "
        f"batch-1 latency {speed['latency']['median_ms']:.2f} ms (p90 {speed['latency']['p90_ms']:.2f}) of the "
        f"{classifier.format} model alone" if rows else ""), file=sys.stderr)
    if not rows:
        if not failed:
            raise ZooError(f"no image files found in {', '.join(images)}")
        return EXIT_USAGE
    return 0
