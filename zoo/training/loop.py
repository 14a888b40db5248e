"""The training loop for several workers, where Keras 3's `fit` fails (keras-team/keras#20585).

Each step runs under `strategy.run` on every replica: per-example losses are averaged over the
global batch (tf.nn.compute_average_loss), so the sum of gradients the optimizer all-reduces is
the gradient of the global batch's mean loss, as one process would compute it; loss and accuracy
counts are summed across replicas. Evaluation runs whole on every worker (the weights are the same
everywhere), which needs no collective and so cannot leave a worker waiting on an uneven last batch.
The loop drives the same Keras callbacks `fit` would (progress, NaN stop, checkpoints, metrics,
TensorBoard), so a run directory looks the same whichever path trained it.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from zoo.training.compile import build_optimizer
from zoo.training.distribute import Distribution

COUNTS = ("loss", "correct", "top5", "examples")


def _counts(labels: tf.Tensor, predictions: tf.Tensor, per_example_loss: tf.Tensor) -> dict[str, tf.Tensor]:
    """Sums over a batch, which add up across replicas and steps into the epoch's means."""
    predictions = tf.cast(predictions, tf.float32)
    classes = tf.argmax(labels, axis=-1)
    return {"loss": tf.reduce_sum(tf.cast(per_example_loss, tf.float32)),
            "correct": tf.reduce_sum(tf.cast(tf.equal(tf.argmax(predictions, axis=-1), classes), tf.float32)),
            "top5": tf.reduce_sum(tf.cast(tf.math.in_top_k(classes, predictions, k=5), tf.float32)),
            "examples": tf.cast(tf.shape(labels)[0], tf.float32)}


def _logs(totals: dict[str, float], prefix: str = "") -> dict[str, float]:
    examples = max(totals["examples"], 1.0)
    return {f"{prefix}loss": totals["loss"] / examples, f"{prefix}accuracy": totals["correct"] / examples,
            f"{prefix}top5": totals["top5"] / examples}


def fit_distributed(model: keras.Model, distribution: Distribution,
                    dataset_fn: Callable[[tf.distribute.InputContext], tf.data.Dataset], eval_dataset: tf.data.Dataset,
                    *, loss: keras.losses.Loss, epochs: int, initial_epoch: int, steps_per_epoch: int, eval_steps: int,
                    eval_epochs: list[int], callbacks: list[keras.callbacks.Callback], verbose: int) -> None:
    """Trains `model` (built and compiled under the strategy's scope) as `fit` would; `loss` has no reduction."""
    strategy, global_batch = distribution.strategy, distribution.global_batch_size
    optimizer = model.optimizer
    with strategy.scope():  # else apply_gradients builds it while tracing the step, which then traces twice
        build_optimizer(model)
    batches = iter(strategy.distribute_datasets_from_function(dataset_fn))

    def replica_step(images, labels):
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            per_example = loss(labels, predictions)
            total = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if model.losses:
                total += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(total)  # the loss scale of mixed_float16; unchanged otherwise
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))  # all-reduces across replicas
        return _counts(labels, predictions, per_example)

    @tf.function
    def train_step(iterator):
        counts = strategy.run(replica_step, args=next(iterator))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for key, value in counts.items()}

    @tf.function
    def eval_step(images, labels):
        predictions = model(images, training=False)
        return _counts(labels, predictions, loss(labels, predictions))

    callback_list = keras.callbacks.CallbackList(callbacks, add_progbar=verbose != 0, model=model, verbose=verbose,
                                                 epochs=epochs, steps=steps_per_epoch)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        totals = dict.fromkeys(COUNTS, 0.0)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            for key, value in train_step(batches).items():
                totals[key] += float(value)
            callback_list.on_train_batch_end(step, _logs(totals))
            if model.stop_training:
                break
        logs = _logs(totals)
        if not model.stop_training and epoch + 1 in eval_epochs:
            callback_list.on_test_begin()
            evaluated = dict.fromkeys(COUNTS, 0.0)
            for images, labels in eval_dataset.take(eval_steps):
                for key, value in eval_step(images, labels).items():
                    evaluated[key] += float(value)
            callback_list.on_test_end(_logs(evaluated))
            logs.update(_logs(evaluated, "val_"))
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs=None)
