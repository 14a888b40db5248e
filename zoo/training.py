"""The trainer: one function, `train(experiment)`, for every model config and dataset.

Read it top to bottom: resolve the run directory (resuming if it holds an unfinished run of the
same experiment), load the data, build and compile the model (or restore the last checkpoint),
fit with per-epoch checkpoints and metrics, then export and verify, and write summary.json.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
import yaml

from zoo import files
from zoo.analysis import analyze
from zoo.builder import build_model
from zoo.data import Data, load_data
from zoo.errors import ZooError
from zoo.experiment import Experiment, OptimizerConfig, TrainConfig
from zoo.saving import load_keras_model
from zoo.schedules import WarmupSchedule

CHECKPOINT = "checkpoint.keras"
STATE = "state.json"
METRICS_COLUMNS = ["epoch", "train_loss", "train_accuracy", "train_top5", "eval_loss", "eval_accuracy", "eval_top5",
                   "learning_rate", "epoch_seconds"]


class TrainingDiverged(ZooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


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


# ----------------------------------------------------------------------------- run directory


def run_directory(experiment: Experiment, workdir: str | Path | None) -> Path:
    if workdir:
        return Path(workdir).resolve()
    return (Path("runs") / experiment.name / time.strftime("%Y%m%d-%H%M%S")).resolve()


def read_state(run_dir: Path, experiment: Experiment) -> dict[str, Any]:
    """The saved progress of this run directory, refusing one that holds another experiment."""
    saved_config = run_dir / "config.yaml"
    if not saved_config.exists():
        return {"epoch": 0, "history": []}
    saved, current = yaml.safe_load(saved_config.read_text()), experiment.to_dict()
    if saved != current:
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ZooError(f"--workdir {run_dir} holds a run of a different configuration (sections differing: "
                       f"{', '.join(changed)}); use a new --workdir")
    state_path = run_dir / STATE
    if not state_path.exists():
        return {"epoch": 0, "history": []}
    return json.loads(state_path.read_text())


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    files.write_atomic(path, out.getvalue())


# ----------------------------------------------------------------------------- callbacks


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
    """Training images per second, excluding the first batch (tracing) and evaluation."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size, self.images, self.seconds = batch_size, 0, 0.0
        self._since: float | None = None
        self.epoch_started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._since is not None:
            self.images += self.batch_size
            self.seconds += now - self._since
        self._since = now

    def on_test_begin(self, logs=None):
        self._since = None  # evaluation time is not training time; the next batch restarts the clock

    @property
    def images_per_sec(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


class Checkpointer(keras.callbacks.Callback):
    """At each epoch's end: the checkpoint, then state.json and metrics.csv, all written atomically.

    state.json is written last, so it never names an epoch whose checkpoint is not on disk.
    """

    def __init__(self, run_dir: Path, state: dict[str, Any], guard: DivergenceGuard, throughput: Throughput):
        super().__init__()
        self.run_dir, self.state, self.guard, self.throughput = run_dir, state, guard, throughput

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
        tmp = self.run_dir / f".{CHECKPOINT}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / CHECKPOINT)
        self.state["epoch"] = epoch + 1
        self.state["history"].append(row)
        self.state["train_images_per_sec"] = self.throughput.images_per_sec
        write_metrics_csv(self.run_dir / "metrics.csv", self.state["history"])
        files.write_json(self.run_dir / STATE, self.state)


# ----------------------------------------------------------------------------- the run


def train(experiment: Experiment, workdir: str | Path | None = None) -> dict[str, Any]:
    """Trains `experiment` in `workdir` (resuming an unfinished run there), exports it, returns the summary."""
    started = time.perf_counter()
    run_dir = run_directory(experiment, workdir)
    state = read_state(run_dir, experiment)
    if (run_dir / "summary.json").exists() and state["epoch"] >= experiment.train.epochs:
        print(f"{run_dir}: already finished ({state['epoch']} epochs); nothing to do")
        return json.loads((run_dir / "summary.json").read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    files.write_atomic(run_dir / "config.yaml", yaml.safe_dump(experiment.to_dict(), sort_keys=False))

    config = experiment.train
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy(config.precision)
    xla, xla_reason = resolve_xla(config.xla)
    model_config = experiment.model_config()
    data = load_data(experiment.data, model_input_size=model_config.input_shape[:2], batch_size=config.batch_size,
                     seed=config.seed, steps_per_epoch=config.steps_per_epoch, eval_steps=config.eval_steps)
    model_config = model_config.with_overrides((*data.preprocessing.image_size, data.preprocessing.channels),
                                               data.num_classes)
    analysis = analyze(model_config)

    if state["epoch"]:
        # The checkpoint holds the model, the optimizer's state and the schedule (it is a function of
        # the optimizer's step), so training continues exactly where the last finished epoch left it.
        print(f"resuming {run_dir} at epoch {state['epoch'] + 1} of {config.epochs}")
        model = load_keras_model(run_dir / CHECKPOINT)
    else:
        model = build_model(model_config)
        compile_model(model, config, data.steps_per_epoch, xla)
    print(f"{experiment.name}: {model_config.name} ({analysis.params:,} parameters, {analysis.macs:,} MACs) on "
          f"{data.name} {data.preprocessing.image_size[0]}x{data.preprocessing.image_size[1]}x"
          f"{data.preprocessing.channels}, {data.num_classes} classes; {data.train_examples:,} training images, "
          f"{data.steps_per_epoch} steps of {config.batch_size} per epoch; xla: {'on' if xla else 'off'} "
          f"({xla_reason}); precision: {config.precision}")

    guard, throughput = DivergenceGuard(), Throughput(config.batch_size)
    callbacks = [guard, throughput, Checkpointer(run_dir, state, guard, throughput),
                 keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False, profile_batch=0)]
    if state["epoch"] < config.epochs:
        model.fit(data.train, epochs=config.epochs, initial_epoch=state["epoch"], steps_per_epoch=data.steps_per_epoch,
                  validation_data=data.eval, validation_steps=data.eval_steps, callbacks=callbacks,
                  shuffle=False, verbose=1 if sys.stdout.isatty() else 2)  # tf.data shuffles
    if guard.diverged_at:
        epoch, step = guard.diverged_at
        kept = f"the checkpoint of epoch {state['epoch']} is kept" if state["epoch"] else "no epoch had finished"
        raise TrainingDiverged(f"the loss became NaN or infinite at epoch {epoch}, step {step}; training stopped and "
                               f"{kept} in {run_dir} (try a lower train.optimizer.learning_rate)")

    return finish(run_dir, experiment, model, data, state, analysis, xla, time.perf_counter() - started)


def finish(run_dir: Path, experiment: Experiment, model: keras.Model, data: Data, state: dict[str, Any], analysis,
           xla: bool, wall_seconds: float) -> dict[str, Any]:
    """Exports the trained model, verifies the SavedModel, writes summary.json and prints where things are."""
    from zoo.export import export_run

    last = state["history"][-1]
    export_dir = export_run(run_dir, model, data) if experiment.export.saved_model else None
    if experiment.export.keras:
        tmp = run_dir / ".model.tmp.keras"
        model.save(tmp)
        os.replace(tmp, run_dir / "model.keras")
    summary = {
        "experiment": experiment.name,
        "model": analysis.config.name,
        "dataset": data.name,
        "input_shape": list(analysis.config.input_shape),
        "num_classes": analysis.config.num_classes,
        "params": analysis.params,
        "macs": analysis.macs,
        "epochs": state["epoch"],
        "xla": xla,
        "precision": experiment.train.precision,
        "train_images_per_sec": round(state.get("train_images_per_sec", 0.0), 1),
        "wall_seconds": round(wall_seconds, 1),
        "metrics": {key: last.get(key) for key in
                    ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "eval_top5")},
        "run_dir": str(run_dir),
        "export_dir": str(export_dir) if export_dir else None,
    }
    files.write_json(run_dir / "summary.json", summary)
    metrics = summary["metrics"]
    print(f"\n{experiment.name}: {summary['epochs']} epochs of {summary['model']} on {data.name}: "
          f"eval top-1 {metrics['eval_accuracy']:.2%}, top-5 {metrics['eval_top5']:.2%}, loss {metrics['eval_loss']:.4f}; "
          f"{summary['train_images_per_sec']:,.0f} training images/s, {summary['wall_seconds']:.0f} s in all")
    print(f"run:        {run_dir}")
    if export_dir:
        print(f"SavedModel: {export_dir}  (serving_default: uint8 images -> probabilities, class)")
    return summary
