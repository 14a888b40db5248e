"""The two custom Keras layers the zoo needs, where Keras has no stock layer.

Both are registered as serializable, so `.keras` files load with `import zoo` and SavedModels
need no zoo code at all.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels (Krizhevsky et al. 2012, section 3.3).

    b = a / (k + alpha * sum of a^2 over `size` neighbouring channels) ** beta, the paper's
    formula (alpha is not divided by `size`, unlike Caffe's).
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd integer. Received: size={size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.size // 2, bias=self.k, alpha=self.alpha, beta=self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


@keras.saving.register_keras_serializable(package="zoo")
class ChannelZeroPad(keras.layers.Layer):
    """Appends zero channels: the parameter-free identity shortcut of He et al. 2015, option A."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, inputs):
        extra = self.channels - inputs.shape[-1]
        return keras.ops.pad(inputs, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}
