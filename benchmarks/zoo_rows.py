"""The zoo's rows of `make bench`: the training step on in-memory data (XLA off, whole-model, per
block; float32 or mixed_bfloat16), the input pipeline alone, and the trainer end to end.

Each row is an object with `run(steps) -> seconds`, built (and warmed up) once, so the runner can
interleave repetitions of all rows.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo.data.pipeline import load_data
from zoo.experiment import load_experiment
from zoo.models.builder import build_model, trace
from zoo.models.config import load_model_config
from zoo.models.keras_ops import KerasOps
from zoo.training.compile import compile_model, make_loss, make_optimizer, make_schedule, training_metrics
from zoo.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = {"resnet20": "cifar10_resnet20", "lenet5": "mnist_lenet5"}


def experiment_path(model_name: str) -> Path:
    """The shipped experiment whose recipe (optimizer, schedule) every row of `model_name` trains with."""
    return ROOT / "configs" / "experiments" / f"{EXPERIMENTS[model_name]}.yaml"


class CompiledBlock(keras.layers.Layer):
    """One block's layers (convolution, norm, activation, ...) run as one XLA cluster."""

    def __init__(self, block: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.block = block
        self._training = tf.function(lambda x: self.block(x, training=True), jit_compile=True)
        self._inference = tf.function(lambda x: self.block(x, training=False), jit_compile=True)

    def call(self, x, training=None):
        return self._training(x) if training else self._inference(x)


def per_block_xla_model(name: str) -> keras.Model:
    """The zoo model with each block compiled as its own XLA cluster (sharing the same layers)."""
    config = load_model_config(name)
    inputs = keras.Input(config.input_shape, name="image")
    x, previous = inputs, inputs
    for block in trace(config, KerasOps(), inputs):
        x = CompiledBlock(keras.Model(previous, block.output, name=block.name), name=f"{block.name}_xla")(x)
        previous = block.output
    return keras.Model(inputs, x, name=f"{config.name}_per_block_xla")


def synthetic_batch(model: keras.Model, batch_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    shape, classes = model.input_shape[1:], model.output_shape[-1]
    x = np.random.default_rng(0).normal(size=(batch_size, *shape)).astype("float32")
    y = keras.utils.to_categorical(np.arange(batch_size) % classes, classes)
    return tf.constant(x), tf.constant(y)


class InMemoryStep:
    """The compiled training step on one batch held in memory: the model without an input pipeline.

    It calls the `train_function` that `fit` calls each step, on one iterator over the batch made
    once, and the experiment's own optimizer, so it differs from the trainer only by the pipeline
    and the callbacks. Not `fit` itself: each `fit` call makes a tf.data iterator and deletes it on
    return, and that deletion stalled for about 5 s in a third of the calls on this machine. Not
    `train_on_batch` either: it resets the metrics and copies the logs to NumPy every call, and
    measured 5% slower (517 against 545 images/s for ResNet-20).
    """

    def __init__(self, model_name: str, batch_size: int, *, xla: str = "off", precision: str = "float32",
                 model: keras.Model | None = None, steps_per_execution: int = 1, metrics: bool = True,
                 optimizer: str = "experiment"):
        """`metrics=False` compiles without accuracy metrics and `optimizer="plain"` with plain SGD (no
        schedule, no weight decay): the per-step costs benchmarks/step_overhead.py takes apart."""
        config = load_experiment(experiment_path(model_name)).train
        keras.mixed_precision.set_global_policy(precision)
        try:
            if model is None:
                model = per_block_xla_model(model_name) if xla == "per_block" else build_model(model_name)
            if metrics and optimizer == "experiment":
                compile_model(model, config, steps_per_epoch=100, xla=xla == "whole",
                              steps_per_execution=steps_per_execution)
            else:
                model.compile(optimizer=keras.optimizers.SGD(0.01) if optimizer == "plain" else
                              make_optimizer(config.optimizer, make_schedule(config, 100)),
                              loss=make_loss(config), metrics=training_metrics() if metrics else None,
                              jit_compile=xla == "whole", steps_per_execution=steps_per_execution)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        model.make_train_function()
        self.model, self.steps_per_execution = model, steps_per_execution
        self.batches = iter(tf.data.Dataset.from_tensors(synthetic_batch(model, batch_size)).repeat())
        self.run(3)  # tracing and compilation

    def run(self, steps: int) -> float:
        """Seconds for `steps` steps (with N steps per call: the nearest whole number of calls, scaled)."""
        calls = max(1, round(steps / self.steps_per_execution))
        started = time.perf_counter()
        for _ in range(calls):
            logs = self.model.train_function(self.batches)
        float(logs["loss"])  # the last step has finished
        return (time.perf_counter() - started) * steps / (calls * self.steps_per_execution)


# Every batch augmentation of the recipes (zoo.data.augment), on top of the experiment's crops and flips.
RECIPE_AUGMENTATION = ("data.augment.rand_augment={num_ops: 2, magnitude: 9}", "data.augment.random_erasing=0.25",
                       "data.augment.mixup_alpha=0.2", "data.augment.cutmix_alpha=1.0")


class Pipeline:
    """The real dataset's training pipeline alone, as train.py builds it (augmentation on; `overrides` add more)."""

    def __init__(self, model_name: str, batch_size: int, overrides: tuple[str, ...] = ()):
        experiment = load_experiment(experiment_path(model_name), list(overrides))
        input_size = experiment.model_config().input_shape[:2]
        data = load_data(experiment.data, model_input_size=input_size, batch_size=batch_size)
        self.batches = iter(data.train(None))
        self.run(20)

    def run(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            next(self.batches)
        return time.perf_counter() - started


class Trainer:
    """train.py's trainer end to end on the real dataset: its own images/s over one short epoch.

    Each repetition is a fresh run (data loading, model build and tracing excluded from its clock).
    `overrides` are more `--set` values, such as train.steps_per_execution=1.
    """

    def __init__(self, model_name: str, batch_size: int, precision: str = "float32", overrides: tuple[str, ...] = ()):
        self.model_name, self.batch_size, self.precision = model_name, batch_size, precision
        self.overrides = list(overrides)

    def images_per_sec(self, steps: int) -> float:
        path = experiment_path(self.model_name)
        overrides = [f"train.batch_size={self.batch_size}", "train.epochs=1", f"train.steps_per_epoch={steps}",
                     "train.eval_steps=1", f"train.precision={self.precision}", "export.saved_model=false",
                     "export.keras=false", *self.overrides]
        with tempfile.TemporaryDirectory() as workdir:
            try:
                summary = train(load_experiment(path, overrides), Path(workdir) / "run")
            finally:
                keras.mixed_precision.set_global_policy("float32")
                keras.backend.clear_session()
        return summary["train_images_per_sec"]
