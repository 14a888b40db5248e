"""Hand-written Keras ResNet-20 and LeNet-5: what a user would write without the zoo, for `make bench`.

The same networks as configs/models/resnet20.yaml (He et al. 2015, option A shortcuts) and
lenet5.yaml, written directly with keras.layers.
"""
from __future__ import annotations

import keras
from keras import layers


def _shortcut_a(x, filters: int, strides: int):
    """Option A: subsample, then zero channels appended (no parameters)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    x = layers.MaxPooling2D(1, strides=strides)(x)
    extra = filters - x.shape[-1]
    return layers.Lambda(lambda t: keras.ops.pad(t, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]]))(x)


def resnet20(input_shape=(32, 32, 3), classes: int = 10) -> keras.Model:
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    x = layers.Activation("relu")(layers.BatchNormalization(epsilon=1e-5)(x))
    for filters, first_stride in ((16, 1), (32, 2), (64, 2)):
        for block in range(3):
            strides = first_stride if block == 0 else 1
            skip = _shortcut_a(x, filters, strides)
            y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
            y = layers.Activation("relu")(layers.BatchNormalization(epsilon=1e-5)(y))
            y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
            y = layers.BatchNormalization(epsilon=1e-5)(y)
            x = layers.Activation("relu")(layers.Add()([skip, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x), name="keras_resnet20")


def lenet5(input_shape=(28, 28, 1), classes: int = 10) -> keras.Model:
    return keras.Sequential([
        keras.Input(input_shape),
        layers.Conv2D(6, 5, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, padding="valid", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ], name="keras_lenet5")


MODELS = {"resnet20": resnet20, "lenet5": lenet5}
