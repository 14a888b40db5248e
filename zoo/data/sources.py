"""Where images come from: a TFDS dataset (found, or prepared when allowed) or a folder of images.

`dataset_builder` finds the TFDS builder for a data config (preparing it from `manual_dir` or a
download only when asked) and turns every way of getting that wrong into one clear ZooError;
`load_split` reads one split as unbatched (uint8 image, label) pairs, and where it can also offers
the faster batched reader of zoo.data.records.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import tensorflow as tf

from zoo.common import locks
from zoo.common.errors import ZooError, few, unknown
from zoo.common.quiet import native_stderr_silenced
from zoo.data import image_check
from zoo.data.preprocess import to_channels
from zoo.data.records import BATCH, RecordReader, concatenated, record_reader
from zoo.experiment import DataConfig


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of the dataset and its number of examples."""

    name: str
    examples: int
    dataset: tf.data.Dataset  # (uint8 image, int label) pairs, unbatched
    skipped: tuple[str, ...] = ()  # unreadable files left out (data.bad_images: skip)
    records: RecordReader | None = None  # the same examples, read faster in batches (zoo.data.records)


def _expand(path: str | None) -> str | None:
    return None if path is None else os.path.expanduser(path)


def dataset_builder(config: DataConfig):
    """The TFDS builder for `config`, prepared; a clear ZooError if it cannot be found or prepared."""
    import tensorflow_datasets as tfds

    import zoo.data.datasets  # noqa: F401  (registers zoo_patterns)

    if not sys.stderr.isatty():
        tfds.disable_progress_bar()  # its bars make unreadable logs

    if config.folder:
        root = Path(_expand(config.folder))
        if not root.is_dir():
            raise ZooError(f"data.folder: expected a folder of FOLDER/SPLIT/CLASS/images, received {root} "
                           "(not a directory)")
        try:
            return tfds.ImageFolder(str(root))
        except Exception as error:
            raise ZooError(f"data.folder: cannot read images from {root}: {error}") from None
    data_dir = _expand(config.data_dir)
    try:
        builder = tfds.builder(config.name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ZooError(f"data.name: {unknown('TFDS dataset', config.name, tfds.list_builders())}") from None
    if builder.is_prepared():
        return builder
    where = builder.data_dir
    if not (config.download or config.manual_dir):
        raise ZooError(
            f"dataset {config.name!r} is not prepared in {where} (data_dir: {config.data_dir or 'TFDS default'}); "
            "set data.data_dir (or TFDS_DATA_DIR) to where it is prepared, data.manual_dir to prepare it from "
            "archives you downloaded, or data.download: true to let TFDS download it")
    manual_dir = _expand(config.manual_dir)
    try:
        # Workers of one cluster on one machine all get here; the first prepares, the others wait and reuse it.
        with locks.exclusive(Path(where).parents[1], "dataset directory", wait=True):
            builder = tfds.builder(config.name, data_dir=data_dir)  # anew: what another process prepared meanwhile
            if not builder.is_prepared():
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except ZooError:
        raise
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise ZooError(
            f"cannot prepare dataset {config.name!r} in {where} (download: {str(config.download).lower()}, "
            f"manual_dir: {manual_dir}): {first_line[:200]}; check the network, data.manual_dir, or "
            "data.data_dir") from None
    return builder


def load_split(builder, config: DataConfig, split: str, *, training: bool, seed: int) -> Split:
    """(uint8 image, label) pairs of one split, with TFDS slicing (`train[:90%]`) allowed.

    A folder's images are all checked first (zoo.data.image_check): an unreadable one stops here,
    naming the file, or with `data.bad_images: skip` is left out and listed in `skipped`.
    """
    import tensorflow_datasets as tfds

    skipped: tuple[str, ...] = ()
    unreadable = 0
    if config.folder and split in builder.info.splits:
        unreadable_files = check_folder_split(builder, config, split)
        unreadable = len(unreadable_files)
        skipped = unreadable_files + check_unsupported_files(builder, config, split)
    selecting = bool(config.classes or (training and config.examples_per_class))
    # A selection is by position in the split, so the files are read in their fixed order (the folder
    # reader shuffles without a seed otherwise); the pipeline shuffles the examples themselves anyway.
    read = dict(split=split, as_supervised=True, shuffle_files=training and not selecting,
                read_config=tfds.ReadConfig(shuffle_seed=seed))
    try:
        examples = builder.info.splits[split].num_examples - unreadable
        dataset = builder.as_dataset(**read)
    except (KeyError, ValueError, AssertionError) as error:
        raise ZooError(f"data: cannot read split {split!r} of {builder.name} "
                       f"(splits: {', '.join(builder.info.splits)}): {str(error).splitlines()[0][:160]}") from None
    if config.channels:
        dataset = dataset.map(lambda image, label: (to_channels(image, config.channels), label))
    records = None if config.folder else record_reader(builder, split, config.channels)
    if selecting:
        dataset, examples, records = _select(builder, config, read, dataset, training, records)
    return Split(split, examples, dataset, skipped, records)


def class_names(builder, config: DataConfig) -> list[str]:
    """The classes a run trains on: `data.classes` in their order, else the dataset's (checked: an
    unknown one is one line listing those the dataset has)."""
    names = list(builder.info.features["label"].names)
    for name in config.classes or ():
        if name not in names:
            raise ZooError(f"data.classes: {unknown(f'class of {builder.name}', name, names)}")
    if config.classes and len(set(config.classes)) != len(config.classes):
        raise ZooError(f"data.classes: expected each class once, received {list(config.classes)}")
    return list(config.classes) if config.classes else names


def _select(builder, config: DataConfig, read: dict, dataset: tf.data.Dataset, training: bool,
            records: RecordReader | None):
    """`dataset` (and `records`, if the split has a record reader) with only `data.classes` (relabelled
    in their order) and, in a training split, the first `data.examples_per_class` of each class in the
    split's fixed reading order; and how many examples remain. The labels are read once, without the
    images; the kept positions are also checked against each example's own label in `dataset`, so a
    reordered read could drop examples but never mislabel one."""
    import numpy as np
    import tensorflow_datasets as tfds

    names = list(builder.info.features["label"].names)
    wanted = class_names(builder, config)
    new_label = np.full(len(names), -1, np.int64)
    new_label[[names.index(name) for name in wanted]] = np.arange(len(wanted))
    if records is not None:
        stored = records.labels()
    else:
        undecoded = builder.as_dataset(**{**read, "as_supervised": False},
                                       decoders={"image": tfds.decode.SkipDecoding()})
        stored = concatenated(undecoded.map(lambda example: example["label"]).batch(BATCH))
    labels = new_label[stored]
    keep = labels >= 0
    if training and config.examples_per_class:
        counts = np.bincount(labels[keep], minlength=len(wanted))
        short = [(wanted[i], int(count)) for i, count in enumerate(counts) if count < config.examples_per_class]
        if short:
            name, count = short[0]
            raise ZooError(f"data.examples_per_class: expected at most {count} (class {name!r} has {count} images in "
                           f"split {read['split']!r}), received {config.examples_per_class}")
        rank = np.zeros_like(labels)
        for label in range(len(wanted)):
            where = np.flatnonzero(labels == label)
            rank[where] = np.arange(len(where))
        keep &= rank < config.examples_per_class
    mask, table = tf.constant(keep), tf.constant(new_label)
    selected = (dataset.enumerate()
                .filter(lambda index, example: tf.logical_and(mask[index], tf.gather(table, example[1]) >= 0))
                .map(lambda index, example: (example[0], tf.gather(table, example[1]))))
    return selected, int(keep.sum()), None if records is None else records.selected(keep, new_label)


def check_unsupported_files(builder, config: DataConfig, split: str) -> tuple[str, ...]:
    """Files of a folder split that tfds.ImageFolder does not read: a ZooError naming them (`fail`),
    or a printed count (`skip`); never left out in silence."""
    paths = image_check.unsupported_files(builder, split)
    if not paths:
        return ()
    shown = few(paths)
    readable = "/".join(image_check.FOLDER_IMAGE_SUFFIXES)
    if config.bad_images == "fail":
        raise ZooError(f"data.folder: {len(paths)} file(s) of split {split!r} are not {readable} images, the only "
                       f"kinds the folder reader (tfds.ImageFolder) takes: {shown}; convert them to PNG or remove "
                       "them, or set data.bad_images: skip to leave them out")
    print(f"data: skipped {len(paths)} file(s) of split {split!r} that are not {readable} images "
          f"(data.bad_images: skip): {shown}")
    return tuple(paths)


def check_folder_split(builder, config: DataConfig, split: str) -> tuple[str, ...]:
    """The unreadable files of a folder split: a ZooError for the first (`fail`), or left out (`skip`)."""
    paths = image_check.folder_image_paths(builder, split)
    with native_stderr_silenced():  # libjpeg and libpng print their own complaints about each bad file
        bad = image_check.unreadable_images(paths, builder.info.features["image"].decode_example)
    if not bad:
        return ()
    first, reason = bad[0]
    if config.bad_images == "fail":
        others = f" ({len(bad) - 1} more unreadable in {split!r})" if len(bad) > 1 else ""
        raise ZooError(f"data.folder: {first} is not a readable image: {reason}{others}; fix or remove it, or set "
                       "data.bad_images: skip to leave unreadable files out")
    skipped = tuple(path for path, _ in bad)
    image_check.keep_only(builder, split, set(paths) - set(skipped))
    shown = few(skipped)
    print(f"data: skipped {len(skipped)} unreadable image(s) of {len(paths):,} in split {split!r} "
          f"(data.bad_images: skip): {shown}; first reason: {reason}")
    return skipped
