"""The preprocessing every model input goes through: resize, scale to [0, 1], normalise.

`resize` (torchvision's ImageNet evaluation, which its weights' accuracies are measured with): an image
not at the model's size has its short side resized to `resize` and the centre `image_size` cropped,
instead of being resized to `image_size` whole. An image already at the model's size is taken as
prepared, so preparing twice changes nothing.

One definition serves the training pipeline (zoo.data.pipeline) and the SavedModel's serving function
(zoo.deploy.export), so a served model sees exactly what it was trained on.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from zoo.common.errors import ZooError


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """uint8 [..., h, w, c] with c in 1, 3, 4 -> `channels` (1 or 3): alpha dropped, grey repeated,
    colour to grey by the ITU-R 601 luma weights."""
    have = image.shape[-1]
    if have == 4:
        image, have = image[..., :3], 3
    if have == channels:
        return image
    if channels == 1:
        return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
    return tf.image.grayscale_to_rgb(image)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    image_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None  # short side resized to this, then the centre image_size crop

    def __post_init__(self) -> None:
        if self.resize is not None and self.resize < max(self.image_size):
            raise ZooError(f"resize: expected a short side of at least the {'x'.join(map(str, self.image_size))} "
                             f"crop's {max(self.image_size)} pixels, received {self.resize}")

    def resize_uint8(self, image: tf.Tensor) -> tf.Tensor:
        """One or a batch of uint8 images at `image_size` (unchanged if already that size), still uint8."""
        if tuple(image.shape[-3:-1]) == self.image_size:
            return image
        return self._resize(image)

    def normalize(self, images: tf.Tensor) -> tf.Tensor:
        """uint8 images of `image_size` -> float32 (pixels / 255 - mean) / std."""
        images = tf.cast(images, tf.float32) / 255.0
        return (images - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        """A batch of uint8 images of any size -> the model's float32 input."""
        same = tf.reduce_all(tf.shape(images)[1:3] == tf.constant(self.image_size))
        images = tf.cond(same, lambda: images, lambda: self._resize(images))
        return self.normalize(images)

    def _resize(self, images: tf.Tensor) -> tf.Tensor:
        if self.resize:
            return self._resize_and_crop(images)
        resized = tf.image.resize(images, self.image_size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    def _resize_and_crop(self, images: tf.Tensor) -> tf.Tensor:
        """torchvision's Resize(resize) then CenterCrop(image_size), on uint8 images of any size."""
        shape = tf.shape(images)
        height, width = shape[-3], shape[-2]
        short = tf.minimum(height, width)
        # Resize(int) keeps the aspect: the long side becomes int(resize * long / short)
        new_height = tf.where(height == short, self.resize, self.resize * height // short)
        new_width = tf.where(width == short, self.resize, self.resize * width // short)
        resized = tf.image.resize(images, tf.stack([new_height, new_width]), antialias=True)
        resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        # CenterCrop's offsets: round((size - crop) / 2), halves to even as Python's round
        crop_height, crop_width = self.image_size
        top = tf.cast(tf.round(tf.cast(new_height - crop_height, tf.float32) / 2), tf.int32)
        left = tf.cast(tf.round(tf.cast(new_width - crop_width, tf.float32) / 2), tf.int32)
        return tf.image.crop_to_bounding_box(resized, top, left, crop_height, crop_width)  # a static crop size

    @classmethod
    def from_json(cls, data: dict) -> "Preprocessing":
        return cls(tuple(data["image_size"]), data["channels"], tuple(data["mean"]), tuple(data["std"]),
                   data.get("resize"))

    def to_json(self) -> dict:
        found = {"image_size": list(self.image_size), "channels": self.channels,
                 "mean": list(self.mean), "std": list(self.std)}
        return {**found, "resize": self.resize} if self.resize else found
