"""Training augmentation, on whole batches: crops and flips, RandAugment, random erasing, MixUp and CutMix.

Every transform works on a batch at once (on two cores, one small graph per image cost as much CPU
as training LeNet-5 itself), in this order, each off unless the config asks for it:

1. random crop after zero padding, and horizontal flip, on the uint8 images (written here: a gather
   per batch is all they need);
2. RandAugment (Cubuk et al. 2019) on pixel values 0-255: its eleven operations, each at the
   papers' strength for `magnitude` (`rand_augment_operations`); `num_ops` times per batch one of them
   is drawn and applied to the whole batch, each image with its own random strength. Keras's
   `RandAugment` layer computes all eleven and keeps one (11x the work, measured); `tf.switch_case`
   here runs only the one drawn. Ten are Keras's layers; equalisation is written here (`equalize`),
   because Keras's `Equalization` equalises the histogram of the whole batch, not of each image;
3. normalisation (zoo.data.preprocess);
4. random erasing (Zhong et al. 2017), Keras's `RandomErasing`: with probability `random_erasing` an
   image gets a rectangle of 2-33% of its area filled with 0, which after normalisation is the
   dataset's mean colour (torchvision's default fill);
5. MixUp (Zhang et al. 2017) or CutMix (Yun et al. 2019), Keras's layers: images and their one-hot
   labels mixed with those of a shuffled copy of the batch, so the loss sees soft labels. With both
   set, each batch takes one of the two at even odds, as timm's `Mixup` does.
"""
from __future__ import annotations

import functools
from typing import Callable

import keras
import tensorflow as tf

from zoo.data.preprocess import Preprocessing
from zoo.experiment import AugmentConfig


def equalize(images: tf.Tensor) -> tf.Tensor:
    """Histogram equalisation of each image's each channel, as PIL's `ImageOps.equalize` (which the
    RandAugment paper, timm and torchvision use): pixel values 0-255 in, whole values 0-255 out.

    PIL's mapping: with `step` the count of the channel's pixels darker than its brightest, over 255,
    value v goes to (pixels darker than v + step // 2) // step; a channel with step 0 (one value, or
    nearly) is left as it is.
    """
    shape = tf.shape(images)
    batch, channels = shape[0], shape[3]
    values = tf.cast(images, tf.int32)
    planes = tf.reshape(tf.transpose(values, [0, 3, 1, 2]), [batch * channels, -1])  # a row per image channel
    histogram = tf.math.bincount(planes, minlength=256, maxlength=256, axis=-1)
    darker = tf.cumsum(histogram, axis=1, exclusive=True)  # [plane, v]: its pixels darker than v
    step = tf.gather(darker, tf.reduce_max(planes, axis=1), batch_dims=1) // 255
    table = tf.minimum((darker + step[:, None] // 2) // tf.maximum(step, 1)[:, None], 255)
    table = tf.where(step[:, None] > 0, table, tf.range(256)[None])
    equalized = tf.reshape(tf.gather(table, planes, batch_dims=1), [batch, channels, shape[1], shape[2]])
    return tf.cast(tf.transpose(equalized, [0, 2, 3, 1]), images.dtype)


def rand_augment_operations(magnitude: float, seed: int) -> list[Callable[[tf.Tensor], tf.Tensor]]:
    """RandAugment's eleven operations at the papers' strength for `magnitude` (of 10), on a batch.

    Keras's own RandAugment hands one `factor` to every operation, in each one's own units: at 0.9 it
    rotates by up to 324 degrees and translates by up to 90% of the image (measured: 54% test top-1
    where the fast recipe alone gives 78%). Here each gets the range of the RandAugment and AutoAugment
    papers (as timm scales them) at magnitude / 10. Shear, translation and rotation fill what they
    uncover with black, as torchvision does (timm and the papers' code fill with a constant grey; Keras's
    default mirrors the image, which took a quarter to a half longer a call on 128 28x28 images, Intel
    Xeon AMX).
    """
    s = magnitude / 10
    common = {"seed": seed, "dtype": "float32"}
    affine = {"fill_mode": "constant", "fill_value": 0.0, **common}
    bits = max(1, 8 - round(4 * s))  # posterize: 8 bits at 0, 4 at 10
    layers = [
        keras.layers.RandomShear(x_factor=0.3 * s, y_factor=0.3 * s, **affine),          # shear up to 0.3
        keras.layers.RandomTranslation(0.45 * s, 0.45 * s, **affine),                     # up to 45% of the size
        keras.layers.RandomRotation(30 / 360 * s, **affine),                              # up to 30 degrees
        keras.layers.RandomBrightness(0.45 * s, value_range=(0, 255), **common),          # +-45% of the range
        keras.layers.RandomColorDegeneration(0.9 * s, value_range=(0, 255), **common),    # colour 1 +- 0.9
        keras.layers.RandomContrast(0.9 * s, value_range=(0, 255), **common),             # contrast 1 +- 0.9
        keras.layers.RandomSharpness(0.9 * s, value_range=(0, 255), **common),            # sharpness 1 +- 0.9
        keras.layers.RandomPosterization((bits, bits), value_range=(0, 255), **common),
        keras.layers.Solarization(threshold_factor=(1 - s, 1 - s), value_range=(0, 255), **common),  # above 256(1-s)
        keras.layers.AutoContrast(value_range=(0, 255), dtype="float32"),
    ]
    return [functools.partial(layer, training=True) for layer in layers] + [equalize]


def crop_and_flip(images: tf.Tensor, config: AugmentConfig, seed: int) -> tf.Tensor:
    """Random crops after zero padding, and horizontal flips, of a batch of uint8 images, each its own."""
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    if config.random_crop_padding:
        pad = config.random_crop_padding
        padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        offsets = tf.random.uniform([batch, 2], 0, 2 * pad + 1, dtype=tf.int32, seed=seed)
        rows = offsets[:, :1] + tf.range(height)[None]          # [batch, height]: each image's crop rows
        columns = offsets[:, 1:] + tf.range(width)[None]        # [batch, width]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, columns, axis=2, batch_dims=1)
    if config.horizontal_flip:
        flip = tf.random.uniform([batch], seed=seed + 1) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return images


class BatchAugmentation:
    """uint8 images and one-hot labels of a training batch -> augmented, normalised images and (soft) labels.

    Built once per pipeline: the Keras layers hold the random generators, seeded from the run's seed.
    They compute in float32 whatever the training precision (under mixed_bfloat16 Keras would give them
    bfloat16, which MixUp refuses and which would round the pixels).
    """

    def __init__(self, config: AugmentConfig, preprocessing: Preprocessing, seed: int):
        self.config, self.preprocessing, self.seed = config, preprocessing, seed
        self.rand_augment = rand_augment_operations(config.rand_augment.magnitude, seed + 2) if config.rand_augment \
            else None
        self.random_erasing = None
        if config.random_erasing:
            # Keras clips the fill into value_range; normalised pixels span these bounds, and 0 lies inside them.
            low = min((0 - m) / s for m, s in zip(preprocessing.mean, preprocessing.std))
            high = max((1 - m) / s for m, s in zip(preprocessing.mean, preprocessing.std))
            self.random_erasing = keras.layers.RandomErasing(factor=(config.random_erasing, config.random_erasing),
                                                             fill_value=0.0, value_range=(low, high), seed=seed + 3,
                                                             dtype="float32")
        self.mixup = (keras.layers.MixUp(alpha=config.mixup_alpha, seed=seed + 4, dtype="float32")
                      if config.mixup_alpha else None)
        self.cutmix = None
        if config.cutmix_alpha:
            self.cutmix = keras.layers.CutMix(factor=(config.cutmix_alpha, config.cutmix_alpha), seed=seed + 5,
                                              dtype="float32")

    def __call__(self, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if self.config.random_crop_padding or self.config.horizontal_flip:
            images = crop_and_flip(images, self.config, self.seed)
        if self.rand_augment:
            images = tf.cast(self._rand_augment(tf.cast(images, tf.float32)), tf.uint8)
        images = self.preprocessing.normalize(images)
        if self.random_erasing:
            images = self.random_erasing(images, training=True)
        if self.mixup and self.cutmix:
            use_mixup = tf.random.uniform([], seed=self.seed + 6) < 0.5
            return tf.cond(use_mixup, lambda: self._mix(self.mixup, images, labels),
                           lambda: self._mix(self.cutmix, images, labels))
        if self.mixup or self.cutmix:
            return self._mix(self.mixup or self.cutmix, images, labels)
        return images, labels

    def _rand_augment(self, images: tf.Tensor) -> tf.Tensor:
        for step in range(self.config.rand_augment.num_ops):
            chosen = tf.random.uniform([], 0, len(self.rand_augment), dtype=tf.int32, seed=self.seed + 10 + step)
            images = tf.switch_case(chosen, [lambda operation=operation: tf.clip_by_value(operation(images), 0, 255)
                                             for operation in self.rand_augment])
        return images

    @staticmethod
    def _mix(layer: keras.layers.Layer, images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mixed = layer({"images": images, "labels": labels}, training=True)
        return mixed["images"], mixed["labels"]
