"""The preprocessing every model input goes through: resize, scale to [0, 1], normalise.

One definition serves the training pipeline (zoo.data.pipeline) and the SavedModel's serving function
(zoo.deploy.export), so a served model sees exactly what it was trained on.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf


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
        resized = tf.image.resize(images, self.image_size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    @classmethod
    def from_json(cls, data: dict) -> "Preprocessing":
        return cls(tuple(data["image_size"]), data["channels"], tuple(data["mean"]), tuple(data["std"]))

    def to_json(self) -> dict:
        return {"image_size": list(self.image_size), "channels": self.channels,
                "mean": list(self.mean), "std": list(self.std)}
