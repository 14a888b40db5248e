"""The tf.data pipelines a model trains and evaluates on, for any image-classification dataset.

`load_data` gets the dataset from zoo.data.sources, then builds the training and evaluation
pipelines: decoded uint8 images at the model's size, cached in memory when they fit, shuffled,
augmented (random crop with padding, horizontal flip), batched (with fixed batch shapes, as XLA
wants), normalised by zoo.data.preprocess and prefetched. Labels are one-hot, so label smoothing
and the accuracy metrics share one loss path.
"""
from __future__ import annotations

import dataclasses
import math
import os

import tensorflow as tf

from zoo.common.errors import ZooError
from zoo.data.preprocess import Preprocessing
from zoo.data.sources import Split, dataset_builder, load_split
from zoo.experiment import AugmentConfig, DataConfig

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Data:
    """What the trainer needs: the pipelines, their sizes and the dataset's shape and classes."""

    name: str
    image_shape: tuple[int | None, int | None, int]  # the dataset's own (None where sizes vary)
    class_names: list[str]
    preprocessing: Preprocessing
    train: tf.data.Dataset | None
    eval: tf.data.Dataset
    eval_images: tf.data.Dataset  # the evaluation split's uint8 images at image_size, unbatched, for export checks
    train_images: tf.data.Dataset  # the same of the training split, in file order, for int8 calibration
    train_examples: int
    eval_examples: int
    steps_per_epoch: int
    eval_steps: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _cache_fits(examples: int, shape: tuple[int, int, int]) -> bool:
    """Decoded uint8 images fit in memory if they take under a quarter of the machine's RAM."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return examples * math.prod(shape) < total / 4


def augment(image: tf.Tensor, config: AugmentConfig, seed: int) -> tf.Tensor:
    """Random crop after zero padding, and horizontal flip, on one uint8 image."""
    if config.random_crop_padding:
        pad = config.random_crop_padding
        shape = tf.shape(image)
        image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
        image = tf.image.random_crop(image, shape, seed=seed)
    if config.horizontal_flip:
        image = tf.image.random_flip_left_right(image, seed=seed)
    return image


def pipeline(split: Split, config: DataConfig, preprocessing: Preprocessing, num_classes: int, *,
             batch_size: int, training: bool, seed: int) -> tf.data.Dataset:
    """The batched, normalised pipeline of one split (repeating forever when training)."""
    dataset = split.dataset.map(lambda image, label: (preprocessing.resize_uint8(image), label),
                                num_parallel_calls=AUTOTUNE)
    shape = (*preprocessing.image_size, preprocessing.channels)
    if config.cache == "memory" or (config.cache == "auto" and _cache_fits(split.examples, shape)):
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer or split.examples, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat()
        if config.augment != AugmentConfig():
            dataset = dataset.map(lambda image, label: (augment(image, config.augment, seed), label),
                                  num_parallel_calls=AUTOTUNE)
    # Training batches all have one shape (XLA compiles once); evaluation keeps its last, partial batch.
    dataset = dataset.batch(batch_size, drop_remainder=training, num_parallel_calls=AUTOTUNE)
    dataset = dataset.map(lambda images, labels: (preprocessing.normalize(images), tf.one_hot(labels, num_classes)),
                          num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def load_data(config: DataConfig, *, model_input_size: tuple[int, int], batch_size: int, seed: int = 0,
              steps_per_epoch: int | None = None, eval_steps: int | None = None,
              train: bool = True) -> Data:
    """The training and evaluation pipelines for `config` (training omitted with `train=False`).

    Images are resized to `data.image_size`, else kept at the dataset's own size when it is fixed,
    else resized to the model's input size.
    """
    builder = dataset_builder(config)
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ZooError(f"data: {builder.name} is not an image classification dataset "
                       f"(expected 'image' and 'label' features, received {', '.join(features)})")
    image_shape = tuple(features["image"].shape)
    class_names = list(features["label"].names)
    fixed = all(isinstance(d, int) for d in image_shape[:2])
    image_size = config.image_size or (tuple(image_shape[:2]) if fixed else tuple(model_input_size))
    channels = image_shape[2]
    if len(config.mean) not in (1, channels):
        raise ZooError(f"data.mean: expected 1 or {channels} values for {channels}-channel images, "
                       f"received {len(config.mean)}")
    preprocessing = Preprocessing(tuple(image_size), channels, config.mean, config.std)
    evaluation = load_split(builder, config, config.eval_split, training=False, seed=seed)
    full_eval_steps = math.ceil(evaluation.examples / batch_size)
    common = dict(config=config, preprocessing=preprocessing, num_classes=len(class_names), batch_size=batch_size,
                  seed=seed)
    eval_pipeline = pipeline(evaluation, training=False, **common)
    train_pipeline, train_examples, steps = None, 0, 0
    if train:
        training = load_split(builder, config, config.train_split, training=True, seed=seed)
        if training.examples < batch_size:
            raise ZooError(f"train.batch_size: expected at most the {training.examples} training examples of "
                           f"{config.train_split!r}, received {batch_size}")
        train_pipeline, train_examples = pipeline(training, training=True, **common), training.examples
        steps = min(steps_per_epoch or math.inf, training.examples // batch_size)
    eval_images = evaluation.dataset.map(lambda image, label: preprocessing.resize_uint8(image))
    train_images = load_split(builder, config, config.train_split, training=False, seed=seed).dataset.map(
        lambda image, label: preprocessing.resize_uint8(image))
    return Data(builder.name, image_shape, class_names, preprocessing, train_pipeline, eval_pipeline, eval_images,
                train_images, train_examples, evaluation.examples, int(steps),
                min(eval_steps or math.inf, full_eval_steps))
