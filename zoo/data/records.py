"""A TFDS split read from its TFRecord file a batch of records at a time, for the in-memory pipeline.

TFDS's reader parses and decodes one example per tf.data element, and that per-element work is most
of the time a split takes to load: CIFAR-10's 50,000 training images took 5.8 s through
`as_dataset` on the 2-core Intel Xeon (AMX), and 1.9 s parsed 4,096 records at a time with
`tf.io.parse_example` and decoded by the dataset's own `tfds.features.Image` inside one `tf.map_fn`
(benchmarks/load_split.py).

It gives the examples `as_dataset` gives, in the same order, for a split TFDS keeps in one file
(MNIST's and CIFAR-10's, slices such as `train[:90%]` included), and a selection of them
(`data.classes`, `data.examples_per_class`: zoo.data.sources) by their positions. A selection
reads the labels without the images first: MNIST's 60,000 in 0.15-0.24 s, where TFDS's reader
took 3.7-5.3 s in batches and 7.1-7.3 s one element at a time (Intel Xeon). A split in several
files stays with TFDS's reader, which interleaves them: that order decides which examples an
evaluation cut short by `train.eval_steps` scores. So does a split stored otherwise (a folder,
another format, other features).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

import numpy as np
import tensorflow as tf

from zoo.data.preprocess import to_channels

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

BATCH = 4096  # records parsed and decoded per step
PARALLEL_DECODES = 32  # images of a batch decoded at once (tf.map_fn's parallel_iterations), as timed


@dataclasses.dataclass(frozen=True)
class RecordReader:
    """The file of one split, the examples of it the split takes (all, or a selection), and how to
    decode an image."""

    file: str
    skip: int  # examples before the split's first (a slice such as test[25%:75%])
    take: int  # examples in the split
    image: tfds.features.Image  # the dataset's own feature: it decodes what it encoded
    channels: int | None  # data.channels, if the images are converted
    # A selection (see `selected`): which of the `take` examples are kept, and each label's new label.
    # Left out of ==, where numpy arrays answer element by element.
    keep: np.ndarray | None = dataclasses.field(default=None, compare=False)
    new_label: np.ndarray | None = dataclasses.field(default=None, compare=False)

    def _records(self) -> tf.data.Dataset:
        return tf.data.TFRecordDataset(self.file).skip(self.skip).take(self.take)

    def labels(self) -> np.ndarray:
        """The int64 labels of the split's `take` examples in order, parsed without the images."""
        feature = {"label": tf.io.FixedLenFeature([], tf.int64)}
        return concatenated(self._records().batch(BATCH).map(
            lambda serialized: tf.io.parse_example(serialized, feature)["label"], num_parallel_calls=tf.data.AUTOTUNE))

    def selected(self, keep: np.ndarray, new_label: np.ndarray) -> RecordReader:
        """This split's examples where `keep` (one bool per example, in order) holds, each `label` given
        as `new_label[label]`; the others are neither parsed nor decoded."""
        if len(keep) != self.take:
            raise ValueError(f"expected one keep flag per example of the split ({self.take}), received {len(keep)}")
        return dataclasses.replace(self, keep=np.asarray(keep, bool), new_label=np.asarray(new_label, np.int64))

    def batches(self, resize: Callable[[tf.Tensor], tf.Tensor]) -> tf.data.Dataset:
        """(uint8 images, int64 labels) batches of the split, resized by `resize`, which takes one image or
        a batch and gives every image one shape: a batch at a time where the dataset's images share one
        size (as resizing a batch is faster), else each image as it is decoded."""
        height, width, channels = self.image.shape
        fixed = isinstance(height, int) and isinstance(width, int)
        decoded = tf.TensorSpec((height, width, self.channels or channels) if fixed else None, tf.uint8)
        features = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}

        def decode(encoded: tf.Tensor) -> tf.Tensor:
            image = self.image.decode_example(encoded)
            image = to_channels(image, self.channels) if self.channels else image
            return image if fixed else resize(image)

        def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            example = tf.io.parse_example(serialized, features)
            images = tf.map_fn(decode, example["image"], fn_output_signature=decoded,
                               parallel_iterations=PARALLEL_DECODES)
            return resize(images) if fixed else images, example["label"]

        if self.keep is None:
            return self._records().batch(BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        table = tf.constant(self.new_label)

        def parse_kept(serialized: tf.Tensor, keep: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            images, labels = parse(tf.boolean_mask(serialized, keep))
            return images, tf.gather(table, labels)

        records = tf.data.Dataset.zip(self._records(), tf.data.Dataset.from_tensor_slices(self.keep))
        return records.batch(BATCH).map(parse_kept, num_parallel_calls=tf.data.AUTOTUNE)


def concatenated(label_batches: tf.data.Dataset) -> np.ndarray:
    """A dataset of int64 label batches as one array (an empty one if it has no batch)."""
    return np.concatenate([np.zeros(0, np.int64), *label_batches.as_numpy_iterator()])


def record_reader(builder: tfds.core.DatasetBuilder, split: str, channels: int | None) -> RecordReader | None:
    """The split's RecordReader, or None where TFDS keeps it otherwise than this reader reads."""
    import tensorflow_datasets as tfds

    info = builder.info
    features = info.features
    # A dataset prepared by an older TFDS records no file format; TFDS reads it as TFRecord.
    if ((info.file_format or tfds.core.FileFormat.TFRECORD) != tfds.core.FileFormat.TFRECORD
            or info.supervised_keys != ("image", "label")
            or not isinstance(features["image"], tfds.features.Image)
            or not isinstance(features["label"], tfds.features.ClassLabel)
            or tf.as_dtype(features["image"].dtype) != tf.uint8):
        return None
    try:
        instructions = info.splits[split].file_instructions
    except (KeyError, ValueError, AssertionError):
        return None
    if len(instructions) != 1:
        return None
    only = instructions[0]
    return RecordReader(str(only.filename), int(only.skip), int(only.take), features["image"], channels)
