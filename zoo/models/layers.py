"""The custom Keras layers the zoo needs, where Keras has no stock layer (or none fast enough).

All are registered as serializable, so `.keras` files load with `import zoo` and SavedModels
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


@keras.saving.register_keras_serializable(package="zoo")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training step runs TensorFlow's fused kernel.

    Keras 3 normalizes a training batch through tf.nn.moments and tf.nn.batch_normalization, each
    a chain of separate elementwise ops forward and backward; FusedBatchNormV3 and its gradient are
    one kernel each. On a 2-core CPU that makes ResNet-20's training step 1.28x faster
    (benchmarks/README.md). The weights, config, moving statistics (updated with the biased
    batch variance, as Keras does) and inference are the stock layer's; cases the kernel does not
    cover (other axes or ranks, masks, renorm, synchronized statistics) take the stock path.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and self._fusable(inputs)):
            return super().call(inputs, training=training, mask=mask)
        # The kernel takes bfloat16 inputs with float32 statistics, as Keras computes them. Casting
        # them to float32 and back instead made ResNet-20's mixed_bfloat16 step 1.19-1.25x slower
        # (benchmarks/README.md). Other dtypes (float16) keep the cast: not measured.
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16) else tf.cast(inputs, "float32")
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(self.gamma, "float32"), offset=tf.cast(self.beta, "float32"),
            mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=self.epsilon, data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(x) // tf.shape(x)[-1], "float32")
        variance = variance * (count - 1.0) / count  # the kernel returns the unbiased variance
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(y, self.compute_dtype)

    def _fusable(self, inputs) -> bool:
        return (len(inputs.shape) == 4 and self.axis in (-1, 3) and self.center and self.scale
                and not self.renorm and not self.synchronized)
