"""The trainer's Keras callbacks: NaN stop, throughput, and the per-epoch checkpoint and metrics."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import keras

from zoo.common import files
from zoo.training.checkpoints import prune_checkpoints, save_checkpoint
from zoo.training.run_directory import METRICS, STATE, write_metrics_csv


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss, remembering where."""

    def __init__(self) -> None:
        super().__init__()
        self.diverged_at: tuple[int, int] | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = (self.epoch + 1, batch + 1)
            self.model.stop_training = True


class Throughput(keras.callbacks.Callback):
    """Training images per second, excluding the first call (tracing), evaluation and checkpoints.

    The clock runs from an epoch's first call into the step to its last; in between it counts
    everything, callbacks and Keras's loop included. With steps_per_execution N, Keras calls the
    batch hooks once per N steps, with the first and the last step's index, so images are counted
    from the indices.
    """

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size, self.images, self.seconds = batch_size, 0, 0.0
        self._since: float | None = None
        self._last_batch, self._traced = -1, False
        self.epoch_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()
        self._since = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._since is None and self._traced:
            self._since, self._last_batch = time.perf_counter(), batch - 1

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._since is not None:
            self.images += (batch - self._last_batch) * self.batch_size
            self.seconds += now - self._since
        self._since, self._last_batch, self._traced = now, batch, True

    def on_test_begin(self, logs=None):
        self._since = None  # evaluation time is not training time; the next batch restarts the clock

    @property
    def images_per_sec(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


class Checkpointer(keras.callbacks.Callback):
    """At each epoch's end: the checkpoint, then metrics.csv and state.json, all written atomically.

    state.json is written after the checkpoint, so it never names an epoch whose checkpoint is not
    on disk, and older checkpoints are pruned only after it, so one always matches it.
    """

    def __init__(self, run_dir: Path, state: dict[str, Any], guard: DivergenceGuard, throughput: Throughput,
                 keep: int):
        super().__init__()
        self.run_dir, self.state, self.guard, self.throughput, self.keep = run_dir, state, guard, throughput, keep

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.diverged_at:
            return
        logs = logs or {}
        optimizer = self.model.optimizer
        row = {"epoch": epoch + 1, "epoch_seconds": round(time.perf_counter() - self.throughput.epoch_started, 3),
               "learning_rate": float(optimizer.learning_rate)}
        for key, value in logs.items():
            name = key[4:] if key.startswith("val_") else key
            if name in ("loss", "accuracy", "top5"):
                row[f"{'eval' if key.startswith('val_') else 'train'}_{name}"] = float(value)
        save_checkpoint(self.model, self.run_dir, epoch + 1)
        self.state["epoch"] = epoch + 1
        self.state["history"].append(row)
        self.state["train_images_per_sec"] = self.throughput.images_per_sec
        write_metrics_csv(self.run_dir / METRICS, self.state["history"])
        files.write_json(self.run_dir / STATE, self.state)
        prune_checkpoints(self.run_dir, self.keep)
