"""The tf.data pipelines a model trains and evaluates on, for any image-classification dataset.

`load_data` gets the dataset from zoo.data.sources, then builds the training and evaluation
pipelines: decoded uint8 images at the model's size, held in memory as one tensor when they fit,
shuffled, batched (with fixed batch shapes, as XLA wants), augmented and normalised a whole batch at a time
(zoo.data.augment) and prefetched. Labels are one-hot, so label smoothing, MixUp and CutMix's soft
labels and the accuracy metrics share one loss path.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Callable

import tensorflow as tf

from zoo.common.errors import ZooError
from zoo.data.augment import BatchAugmentation
from zoo.data.preprocess import Preprocessing
from zoo.data.records import BATCH
from zoo.data.sources import Split, dataset_builder, load_split
from zoo.data.sources import class_names as load_class_names
from zoo.experiment import DataConfig

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Data:
    """What the trainer needs: the pipelines, their sizes and the dataset's shape and classes."""

    name: str
    image_shape: tuple[int | None, int | None, int]  # the dataset's own (None where sizes vary)
    class_names: list[str]
    preprocessing: Preprocessing
    train: Callable[..., tf.data.Dataset] | None  # (input_context, skip_batches=0), built on call (see pipeline)
    eval: tf.data.Dataset
    eval_images: tf.data.Dataset  # the evaluation split's uint8 images at image_size, unbatched, for export checks
    train_images: Callable[[], tf.data.Dataset]  # the same of the training split, read on call (int8 calibration)
    train_examples: int
    eval_examples: int
    steps_per_epoch: int
    eval_steps: int
    skipped: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # split -> unreadable files left out

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _cache_fits(examples: int, shape: tuple[int, int, int]) -> bool:
    """Decoded uint8 images fit in memory if they take under a quarter of the machine's RAM."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return examples * math.prod(shape) < total / 4


def in_memory(split: Split, preprocessing: Preprocessing) -> tuple[tf.Tensor, tf.Tensor]:
    """The whole split decoded once, at the model's size: uint8 images [N, H, W, C] and labels [N]."""
    if split.records is not None:
        batches = split.records.batches(preprocessing.resize_uint8)
    else:
        dataset = split.dataset
        if tuple(dataset.element_spec[0].shape[:2]) != preprocessing.image_size:
            dataset = dataset.map(lambda image, label: (preprocessing.resize_uint8(image), label),
                                  num_parallel_calls=AUTOTUNE)
        batches = dataset.batch(BATCH, num_parallel_calls=AUTOTUNE)
    images, labels = zip(*batches.prefetch(1))
    return tf.concat(images, axis=0), tf.concat(labels, axis=0)


def pipeline(split: Split, config: DataConfig, preprocessing: Preprocessing, num_classes: int, *,
             batch_size: int, training: bool, seed: int,
             input_context: tf.distribute.InputContext | None = None, skip_batches: int = 0) -> tf.data.Dataset:
    """The batched, normalised pipeline of one split (repeating forever when training).

    A split that fits in memory is decoded once into one tensor; an epoch then shuffles only
    indices and gathers each batch. A larger one streams: decoded per image, shuffled in a buffer.
    Augmentation and normalisation then work on whole batches either way.

    With an `input_context` (tf.distribute's, one per worker) the pipeline yields per-replica
    batches for that worker's replicas only: in memory, each replica takes its slice of every
    global batch, so N workers train on exactly the batches one process would; streaming, each
    worker reads its shard of the files' examples.

    `skip_batches` (training, in memory) starts at that batch of the same sequence of
    permutations, so a resumed run sees the batches an uninterrupted one would have (the random
    crops and flips are drawn afresh); a streamed split starts a new shuffle instead.
    """
    replicas = input_context.num_replicas_in_sync if input_context else 1  # divides batch_size (checked there)
    shape = (*preprocessing.image_size, preprocessing.channels)
    if config.cache == "memory" or (config.cache == "auto" and _cache_fits(split.examples, shape)):
        images, labels = in_memory(split, preprocessing)
        count = images.shape[0]
        if training:
            # One permutation per epoch, cut into full batches (XLA compiles one shape); the few examples
            # past the last full batch differ from epoch to epoch.
            steps = count // batch_size

            def epoch_batches(epoch):
                order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([seed, epoch]))
                batches = tf.reshape(order[:steps * batch_size], [steps, replicas, batch_size // replicas])
                if input_context:
                    local = replicas // input_context.num_input_pipelines
                    first = input_context.input_pipeline_id * local
                    batches = batches[:, first:first + local]
                return tf.data.Dataset.from_tensor_slices(tf.reshape(batches, [-1, batch_size // replicas]))

            dataset = tf.data.Dataset.counter().flat_map(epoch_batches).skip(skip_batches)  # skips indices only
        else:  # evaluation keeps its last, partial batch
            dataset = tf.data.Dataset.range(count).batch(batch_size)
        dataset = dataset.map(lambda indices: (tf.gather(images, indices), tf.gather(labels, indices)))
    else:
        dataset = split.dataset
        if input_context:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        dataset = dataset.map(lambda image, label: (preprocessing.resize_uint8(image), label),
                              num_parallel_calls=AUTOTUNE)
        if training:
            dataset = dataset.shuffle(config.shuffle_buffer or split.examples, seed=seed, reshuffle_each_iteration=True)
            dataset = dataset.repeat()
        dataset = dataset.batch(batch_size // replicas, drop_remainder=training, num_parallel_calls=AUTOTUNE)
    augment = BatchAugmentation(config.augment, preprocessing, seed) if training else None

    def prepare(images, labels):
        labels = tf.one_hot(labels, num_classes)
        return augment(images, labels) if augment else (preprocessing.normalize(images), labels)

    return dataset.map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def _training_pipeline(split: Split, common: dict, input_context: tf.distribute.InputContext | None = None,
                       skip_batches: int = 0) -> tf.data.Dataset:
    """`pipeline` with the training split's arguments bound; what Data.train calls (tf.distribute passes
    `input_context` positionally; a resumed run passes the batches already trained as `skip_batches`)."""
    return pipeline(split, training=True, input_context=input_context, skip_batches=skip_batches, **common)


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
    class_names = load_class_names(builder, config)
    fixed = all(isinstance(d, int) for d in image_shape[:2])
    image_size = config.image_size or (tuple(image_shape[:2]) if fixed else tuple(model_input_size))
    channels = config.channels or image_shape[2]
    mean, std = config.mean, config.std
    if len(mean) not in (1, channels):
        raise ZooError(f"data.mean: expected 1 or {channels} values for {channels}-channel images, "
                       f"received {len(mean)}")
    preprocessing = Preprocessing(tuple(image_size), channels, tuple(mean), tuple(std))
    evaluation = load_split(builder, config, config.eval_split, training=False, seed=seed)
    full_eval_steps = math.ceil(evaluation.examples / batch_size)
    common = dict(config=config, preprocessing=preprocessing, num_classes=len(class_names), batch_size=batch_size,
                  seed=seed)
    eval_pipeline = pipeline(evaluation, training=False, **common)
    if eval_steps and eval_steps < full_eval_steps:
        # Exactly the batches asked for: with N steps per call, Keras would otherwise run up to N-1 more.
        eval_pipeline = eval_pipeline.take(eval_steps)
    train_pipeline, train_examples, steps = None, 0, 0
    skipped = {evaluation.name: evaluation.skipped} if evaluation.skipped else {}
    training = load_split(builder, config, config.train_split, training=True, seed=seed) if train else None
    if training:
        if training.examples < batch_size:
            raise ZooError(f"train.batch_size: expected at most the {training.examples} training examples of "
                           f"{config.train_split!r}, received {batch_size}")
        train_pipeline = functools.partial(_training_pipeline, training, common)
        train_examples = training.examples
        if training.skipped:
            skipped[training.name] = training.skipped
        steps = min(steps_per_epoch or math.inf, training.examples // batch_size)
    eval_images = evaluation.dataset.map(lambda image, label: preprocessing.resize_uint8(image))

    def train_images() -> tf.data.Dataset:
        # A training run's own split (a folder is checked once); otherwise read only when int8 calibration asks.
        split = training or load_split(builder, config, config.train_split, training=False, seed=seed)
        return split.dataset.map(lambda image, label: preprocessing.resize_uint8(image))

    return Data(builder.name, image_shape, class_names, preprocessing, train_pipeline, eval_pipeline, eval_images,
                train_images, train_examples, evaluation.examples, int(steps),
                min(eval_steps or math.inf, full_eval_steps), skipped)
