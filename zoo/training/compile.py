"""Compiling a model for training: optimizer, learning-rate schedule, loss, metrics and XLA."""
from __future__ import annotations

import keras
import tensorflow as tf

from zoo.experiment import OptimizerConfig, TrainConfig
from zoo.training.schedules import WarmupSchedule


def resolve_xla(setting: str) -> tuple[bool, str]:
    """train.xla -> (jit_compile, why). `auto` turns XLA on only where it is faster: with a GPU."""
    if setting != "auto":
        return setting == "on", setting
    gpus = tf.config.list_physical_devices("GPU")
    return (True, "auto: GPU found") if gpus else (False, "auto: no GPU, and XLA is slower on CPU")


def make_optimizer(config: OptimizerConfig, schedule: WarmupSchedule) -> keras.optimizers.Optimizer:
    weight_decay = config.weight_decay or None
    if config.name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                                    weight_decay=weight_decay)
    if config.name == "adam":
        return keras.optimizers.Adam(schedule, weight_decay=weight_decay)
    return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> WarmupSchedule:
    s = config.schedule
    return WarmupSchedule(s.name, config.optimizer.learning_rate, config.epochs * steps_per_epoch,
                          warmup_steps=int(s.warmup_epochs * steps_per_epoch),
                          boundaries=tuple(m * steps_per_epoch for m in s.milestones), gamma=s.gamma)


def compile_model(model: keras.Model, config: TrainConfig, steps_per_epoch: int, xla: bool) -> None:
    model.compile(
        optimizer=make_optimizer(config.optimizer, make_schedule(config, steps_per_epoch)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                 keras.metrics.TopKCategoricalAccuracy(k=5, name="top5")],
        jit_compile=xla,
    )
