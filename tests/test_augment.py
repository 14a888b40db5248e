"""Batch augmentations: MixUp and CutMix mix images exactly as they mix labels, random erasing erases one
rectangle with the given probability, RandAugment keeps images valid and varies them, its equalisation
is PIL's on each image, and bad values are config errors."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from zoo.common.errors import ConfigError
from zoo.data.augment import BatchAugmentation, equalize
from zoo.data.preprocess import Preprocessing
from zoo.experiment import AugmentConfig, RandAugmentConfig, load_experiment
from helpers import ROOT

IDENTITY = Preprocessing((8, 8), 3, (0.0,), (1 / 255,))  # normalisation leaves pixel values as they are
COUNT = 16


def distinct_batch(size: int = 8):
    """16 images, each of one constant value (10, 20, ...), each the only one of its class."""
    images = np.broadcast_to((10 * np.arange(1, COUNT + 1, dtype=np.uint8))[:, None, None, None],
                             (COUNT, size, size, 3))
    return tf.constant(images), tf.one_hot(tf.range(COUNT), COUNT)


def augmented(config: AugmentConfig, seed: int = 0, size: int = 8):
    images, labels = distinct_batch(size)
    out_images, out_labels = BatchAugmentation(config, IDENTITY, seed)(images, labels)
    return np.round(out_images.numpy(), 3), out_labels.numpy()  # normalising by 1/255 leaves 29.999998 for 30


def test_mixup_blends_each_image_with_another_in_the_proportions_of_its_labels():
    images, labels = augmented(AugmentConfig(mixup_alpha=0.4))
    np.testing.assert_allclose(labels.sum(axis=1), 1, atol=1e-5)
    assert (labels.max(axis=1) < 0.999).any()  # some are mixed, not all lambda = 1
    pixel_values = 10 * np.arange(1, COUNT + 1)
    np.testing.assert_allclose(images[:, 0, 0, 0], labels @ pixel_values, rtol=1e-4)  # image = sum of lambda * image


def test_cutmix_pastes_a_rectangle_of_another_image_whose_area_is_its_label_weight():
    size = 32
    images, labels = augmented(AugmentConfig(cutmix_alpha=1.0), size=size)
    pixel_values = 10 * np.arange(1, COUNT + 1)
    for index, (image, label) in enumerate(zip(images, labels)):
        own = image[..., 0] == pixel_values[index]
        assert set(np.unique(image)) <= set(pixel_values[label > 1e-6])  # pixels only of the images its label names
        assert own.mean() == pytest.approx(label[index], abs=2 / size)  # the area kept, to a pixel on each side
    assert (labels.max(axis=1) < 0.999).any()


def test_with_both_each_batch_takes_mixup_or_cutmix():
    kinds = set()
    for seed in range(8):
        images, labels = augmented(AugmentConfig(mixup_alpha=0.4, cutmix_alpha=1.0), seed)
        blended = any(len(np.unique(image)) == 1 and label.max() < 0.99 for image, label in zip(images, labels))
        pasted = any(len(np.unique(image)) > 1 for image in images)
        kinds.add("mixup" if blended and not pasted else "cutmix" if pasted and not blended else "neither")
    assert kinds == {"mixup", "cutmix"}


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_random_erasing_fills_one_rectangle_with_the_mean_with_the_given_probability(probability):
    images, labels = augmented(AugmentConfig(random_erasing=probability))
    pixel_values = 10 * np.arange(1, COUNT + 1)
    erased = 0
    for index, image in enumerate(images):
        zero = image[..., 0] == 0
        assert set(np.unique(image)) <= {0, pixel_values[index]}
        if zero.any():
            erased += 1
            rows, columns = np.nonzero(zero)
            assert zero[rows.min():rows.max() + 1, columns.min():columns.max() + 1].all()  # one rectangle
    np.testing.assert_array_equal(labels, np.eye(COUNT))  # labels untouched
    assert {0.0: erased == 0, 1.0: erased == COUNT, 0.5: 0 < erased < COUNT}[probability]


def test_rand_augment_keeps_images_valid_and_varies_them():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (COUNT, 8, 8, 3), dtype=np.uint8))
    augment = BatchAugmentation(AugmentConfig(rand_augment=RandAugmentConfig(num_ops=2, magnitude=9)), IDENTITY, 0)
    outputs = [augment(images, tf.zeros([COUNT, 2]))[0].numpy() for _ in range(6)]
    for out in outputs:
        assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    changed = [not np.array_equal(out, images.numpy()) for out in outputs]
    assert sum(changed) >= 4  # an op can leave an image as it was (e.g. auto contrast of a full-range one)
    assert len({out.tobytes() for out in outputs}) > 3


def test_equalize_maps_each_image_as_pil_does_whatever_else_is_in_the_batch():
    rng = np.random.default_rng(0)
    batch = np.stack([rng.integers(0, 60, (28, 28, 3)), rng.integers(100, 256, (28, 28, 3)),
                      np.full((28, 28, 3), 77), np.where(rng.random((28, 28, 3)) < 0.5, 3, 200),
                      rng.beta(2, 5, (28, 28, 3)) * 255]).astype(np.uint8)  # dark, bright, flat, two-valued, skewed
    expected = np.stack([np.asarray(ImageOps.equalize(Image.fromarray(image))) for image in batch])
    np.testing.assert_array_equal(equalize(tf.constant(batch, tf.float32)).numpy(), expected)


@pytest.mark.parametrize("override, message", [
    ("data.augment.mixup_alpha=-0.2", "data.augment.mixup_alpha: expected a non-negative number, received -0.2"),
    ("data.augment.cutmix_alpha=2", "data.augment.cutmix_alpha: expected a number >= 0 and <= 1"),
    ("data.augment.random_erasing=1.5", "data.augment.random_erasing: expected a number >= 0 and <= 1, received 1.5"),
    ("data.augment.rand_augment.magnitude=12", "data.augment.rand_augment.magnitude: expected a number >= 0 and <= 10"),
    ("train.ema_momentum=1", "train.ema_momentum: expected a number > 0 and < 1 or null, received 1"),
    ("train.eval_tta=crop", "train.eval_tta: expected one of 'flip' or null, received 'crop'"),
])
def test_recipe_keys_out_of_range_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment(ROOT / "configs/experiments/default.yaml", [override])
