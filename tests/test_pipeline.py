"""The input pipeline: whole-batch augmentation is exact, and an in-memory epoch sees every example once."""
import numpy as np
import pytest
import tensorflow as tf

from zoo.data.augment import crop_and_flip
from zoo.data.pipeline import pipeline
from zoo.data.preprocess import Preprocessing
from zoo.data.sources import Split
from zoo.experiment import AugmentConfig, DataConfig


def numbered_images(count: int, size: int = 6) -> np.ndarray:
    """uint8 images whose pixels say which image and where: 100*image + 10*row + column (+1)."""
    rows, columns = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    images = np.stack([(image % 2) * 100 + 10 * rows + columns + 1 for image in range(count)])
    return images[..., None].astype(np.uint8)


@pytest.mark.parametrize("augment", [AugmentConfig(random_crop_padding=2), AugmentConfig(horizontal_flip=True),
                                     AugmentConfig(random_crop_padding=1, horizontal_flip=True)])
def test_every_augmented_image_is_a_window_of_its_padded_original_or_its_mirror(augment):
    images = numbered_images(64)
    out = crop_and_flip(tf.constant(images), augment, seed=3).numpy()
    pad = augment.random_crop_padding
    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    size = images.shape[1]
    offsets_seen, flips_seen = set(), set()
    for original, result in zip(padded, out):
        windows = {(dy, dx): original[dy:dy + size, dx:dx + size, :]
                   for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)}
        matches = [(dy, dx, flip) for (dy, dx), window in windows.items() for flip in (False, True)
                   if np.array_equal(result, window[:, ::-1] if flip else window)]
        assert matches, "an augmented image is not a crop (or mirrored crop) of its own padded original"
        offsets_seen.update((dy, dx) for dy, dx, _ in matches)
        flips_seen.update(flip for _, _, flip in matches)
    if pad:
        assert len(offsets_seen) > 1, "every image got the same crop"
    assert (True in flips_seen) == augment.horizontal_flip


def test_an_in_memory_epoch_trains_on_each_example_once_and_reshuffles():
    count, batch = 50, 8
    images = np.arange(count, dtype=np.uint8).reshape(count, 1, 1, 1) * np.ones((1, 2, 2, 1), np.uint8)
    split = Split("train", count, tf.data.Dataset.from_tensor_slices((images, np.arange(count))))
    data = pipeline(split, DataConfig(cache="memory"), Preprocessing((2, 2), 1, (0.0,), (1 / 255,)), count,
                    batch_size=batch, training=True, seed=0)
    steps = count // batch
    epochs = []
    for images_batch, labels in data.take(2 * steps):
        assert images_batch.shape == (batch, 2, 2, 1)
        np.testing.assert_allclose(images_batch.numpy()[:, 0, 0, 0], labels.numpy().argmax(1), atol=1e-4)  # pairs kept
        epochs.append(labels.numpy().argmax(1))
    first, second = np.concatenate(epochs[:steps]), np.concatenate(epochs[steps:])
    assert len(set(first)) == len(first) == steps * batch  # no example twice within an epoch
    assert len(set(second)) == len(second) and list(first) != list(second)


def test_a_resumed_pipeline_continues_the_uninterrupted_sequence_of_batches():
    count, batch = 50, 8
    images = np.zeros((count, 2, 2, 1), np.uint8)
    split = Split("train", count, tf.data.Dataset.from_tensor_slices((images, np.arange(count))))

    def labels(skip_batches: int, take: int) -> list[list[int]]:
        data = pipeline(split, DataConfig(cache="memory"), Preprocessing((2, 2), 1, (0.0,), (1.0,)), count,
                        batch_size=batch, training=True, seed=0, skip_batches=skip_batches)
        return [list(one_hot.numpy().argmax(1)) for _, one_hot in data.take(take)]

    uninterrupted = labels(0, 20)  # 6 batches an epoch: the resumed one starts inside the second epoch
    assert labels(9, 11) == uninterrupted[9:]


def test_streaming_and_in_memory_evaluation_yield_the_same_batches():
    count = 21
    images = numbered_images(count)
    split = Split("test", count, tf.data.Dataset.from_tensor_slices((images, np.arange(count) % 3)))
    preprocessing = Preprocessing((6, 6), 1, (0.5,), (0.25,))
    batches = {cache: list(pipeline(split, DataConfig(cache=cache), preprocessing, 3, batch_size=8, training=False,
                                    seed=0))
               for cache in ("memory", "none")}
    assert [len(x) for x, _ in batches["memory"]] == [8, 8, 5]
    for (x1, y1), (x2, y2) in zip(batches["memory"], batches["none"]):
        np.testing.assert_array_equal(x1.numpy(), x2.numpy())
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())


@pytest.mark.parametrize("height, width, top, left", [
    (256, 320, 16, 48),   # the short side is already 256: no resampling, the centre 224 crop alone
    (256, 321, 16, 48),   # an odd margin: round(48.5) is 48, halves to even as torchvision's Python round
    (333, 256, 54, 16),   # portrait: round(54.5) is 54
])
def test_torchvision_resize_crops_the_centre_as_center_crop_does(height, width, top, left):
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    preprocessing = Preprocessing((224, 224), 3, (0.5,) * 3, (0.25,) * 3, resize=256)
    np.testing.assert_array_equal(preprocessing.resize_uint8(tf.constant(image)).numpy(),
                                  image[top:top + 224, left:left + 224])


def test_torchvision_resize_takes_the_short_side_to_256_in_a_batch_of_any_size():
    images = np.random.default_rng(0).integers(0, 256, (2, 600, 800, 3), np.uint8)
    preprocessing = Preprocessing((224, 224), 3, (0.5,) * 3, (0.25,) * 3, resize=256)
    serve = tf.function(preprocessing, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    resized = tf.cast(tf.round(tf.image.resize(images, (256, 341), antialias=True)), tf.uint8)  # int(256 * 4 / 3)
    expected = preprocessing.normalize(resized[:, 16:240, 58:282])  # round(58.5) is 58
    np.testing.assert_allclose(serve(images).numpy(), expected.numpy(), atol=1e-6)
    assert Preprocessing.from_json(preprocessing.to_json()) == preprocessing
    assert "resize" not in Preprocessing((2, 2), 1, (0.0,), (1.0,)).to_json()  # older cards read as they were


def test_a_resize_smaller_than_the_crop_is_one_line():
    from zoo.common.errors import ZooError

    with pytest.raises(ZooError, match="resize: expected a short side of at least the 224x224 crop's 224 pixels, "
                                       "received 200"):
        Preprocessing((224, 224), 3, (0.5,) * 3, (0.25,) * 3, resize=200)
