"""The batched record reader (zoo.data.records) loads exactly the images and labels TFDS's reader does."""
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo.data.pipeline import in_memory
from zoo.data.preprocess import Preprocessing, to_channels
from zoo.data import records
from zoo.data.records import RecordReader
from zoo.data.sources import dataset_builder, load_split
from zoo.experiment import DataConfig

TFDS_DATA_DIR = os.environ.get("TFDS_DATA_DIR")


def assert_reads_as_tfds(config: DataConfig, split_name: str, image_size: tuple[int, int]) -> None:
    builder = dataset_builder(config)
    split = load_split(builder, config, split_name, training=True, seed=0)
    assert split.records is not None, "a TFDS split in TFRecord files is read in batches"
    channels = config.channels or builder.info.features["image"].shape[-1]
    preprocessing = Preprocessing(image_size, channels, (0.5,), (0.25,))
    images, labels = in_memory(split, preprocessing)
    expected_images, expected_labels = in_memory(dataclasses.replace(split, records=None), preprocessing)
    assert images.shape == (split.examples, *image_size, channels) and images.dtype == tf.uint8
    assert labels.dtype == expected_labels.dtype
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)


@pytest.mark.parametrize("split_name, image_size, settings", [
    ("train", (32, 32), {}),  # as stored
    ("test[25%:75%]", (20, 20), {"channels": 3}),  # a slice, resized, grey made RGB
    ("train", (32, 32), {"classes": ("square", "circle", "cross"), "examples_per_class": 40}),  # relabelled
    ("test[25%:75%]", (32, 32), {"classes": ("x_cross", "horizontal_line")}),
], ids=["train", "slice-resized-rgb", "classes-examples", "slice-classes"])
def test_the_record_reader_loads_what_tfds_loads(patterns_dir, split_name, image_size, settings):
    config = DataConfig(name="zoo_patterns", data_dir=patterns_dir, download=True, **settings)
    assert_reads_as_tfds(config, split_name, image_size)


@pytest.mark.skipif(not TFDS_DATA_DIR, reason="TFDS_DATA_DIR is unset: no prepared MNIST/CIFAR-10 to read")
@pytest.mark.parametrize("name, image_size, settings", [
    ("mnist", (32, 32), {}), ("cifar10", (32, 32), {}), ("cifar10", (32, 32), {"classes": ("ship", "cat")}),
], ids=["mnist", "cifar10", "cifar10-classes"])
def test_the_record_reader_loads_what_tfds_loads_from_prepared_datasets(name, image_size, settings):
    assert_reads_as_tfds(DataConfig(name=name, data_dir=TFDS_DATA_DIR, **settings), "test[:25%]", image_size)


def test_images_of_many_sizes_are_converted_and_resized_one_by_one_within_the_slice(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    originals = [rng.integers(0, 256, (8 + i, 12 - i, 3), dtype=np.uint8) for i in range(6)]
    path = tmp_path / "split.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image in originals:
            label = int(image.shape[0])
            png = tf.io.encode_png(image).numpy()
            features = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    preprocessing = Preprocessing((6, 6), 1, (0.5,), (0.25,))
    reader = RecordReader(str(path), 1, 4, tfds.features.Image(shape=(None, None, 3)), channels=1)
    images, labels = zip(*reader.batches(preprocessing.resize_uint8))
    kept = originals[1:5]
    np.testing.assert_array_equal(np.concatenate(labels), [image.shape[0] for image in kept])
    expected = [preprocessing.resize_uint8(to_channels(tf.constant(image), 1)) for image in kept]
    np.testing.assert_array_equal(np.concatenate(images), np.stack(expected))
    # A selection of the first two, relabelled from 0, in batches of two: the second batch keeps nothing
    np.testing.assert_array_equal(reader.labels(), [9, 10, 11, 12])
    monkeypatch.setattr(records, "BATCH", 2)
    selected = reader.selected(np.array([True, True, False, False]), np.arange(13) - 9)
    batches = list(selected.batches(preprocessing.resize_uint8))
    assert [len(labels) for _, labels in batches] == [2, 0]
    images, labels = (np.concatenate(parts) for parts in zip(*batches))
    np.testing.assert_array_equal(labels, [0, 1])
    np.testing.assert_array_equal(images, np.stack(expected[:2]))
