"""A TFDS split read from its TFRecord files a batch of records at a time, for the in-memory pipeline.

TFDS's reader parses and decodes one example per tf.data element, and that per-element work is most
of the time a split takes to load: CIFAR-10's 50,000 training images took 6.4 s through
`as_dataset` on the 2-core Intel Xeon (AMX), and 2.0-2.9 s parsed 4,096 records at a time with
`tf.io.parse_example` and decoded by the dataset's own `tfds.features.Image` inside one `tf.map_fn`.

The examples are those `as_dataset` reads (slices such as `train[:90%]` included), file after file:
the same order for a split in one file (MNIST's and CIFAR-10's), another for a split in several,
which TFDS interleaves. Only an in-memory split uses this reader, and it permutes its examples anyway.
A split stored otherwise (a folder, another file format, other features) has no record reader.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

from zoo.data.preprocess import to_channels

BATCH = 4096  # records parsed and decoded per step
PARALLEL_DECODES = 32  # images of a batch decoded at once (tf.map_fn's parallel_iterations)


@dataclasses.dataclass(frozen=True)
class RecordReader:
    """The files of one split with the examples each contributes, and how to decode an image."""

    instructions: tuple[tuple[str, int, int], ...]  # (file, examples to skip, examples to take or -1)
    image: object  # the dataset's tfds.features.Image: it decodes what it encoded
    channels: int | None  # data.channels, if the images are converted

    def batches(self, resize: Callable[[tf.Tensor], tf.Tensor]) -> tf.data.Dataset:
        """(uint8 images, int64 labels) batches of the split, resized by `resize`, which takes one image or
        a batch and gives every image one shape: a batch at a time where the dataset's images share one
        size (as resizing a batch is faster), else each image as it is decoded."""
        height, width, channels = self.image.shape
        fixed = isinstance(height, int) and isinstance(width, int)
        decoded = tf.TensorSpec((height, width, self.channels or channels) if fixed else None, tf.uint8)
        files = [tf.data.TFRecordDataset(name).skip(skip).take(take) for name, skip, take in self.instructions]
        records = files[0]
        for more in files[1:]:
            records = records.concatenate(more)
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

        return records.batch(BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def record_reader(builder, split: str, channels: int | None) -> RecordReader | None:
    """The split's RecordReader, or None where TFDS stores it otherwise than this reader reads."""
    import tensorflow_datasets as tfds

    info = builder.info
    features = info.features
    if (info.file_format != tfds.core.FileFormat.TFRECORD or info.supervised_keys != ("image", "label")
            or not isinstance(features["image"], tfds.features.Image)
            or not isinstance(features["label"], tfds.features.ClassLabel)
            or tf.as_dtype(features["image"].dtype) != tf.uint8):
        return None
    try:
        instructions = info.splits[split].file_instructions
    except (KeyError, ValueError, AssertionError):
        return None
    if not instructions:
        return None
    return RecordReader(tuple((str(i.filename), int(i.skip), int(i.take)) for i in instructions),
                        features["image"], channels)
