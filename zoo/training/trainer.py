"""The trainer: one function, `train(experiment)`, for every model config and dataset.

Read it top to bottom: resolve the run directory (resuming if it holds an unfinished run of the
same experiment), load the data, build and compile the model (or restore the last checkpoint),
fit with per-epoch checkpoints and metrics, then export and verify, and write summary.json.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import keras
import yaml

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.data.pipeline import Data, load_data
from zoo.deploy.formats import check_installed
from zoo.experiment import Experiment
from zoo.models.analysis import analyze
from zoo.models.builder import build_model
from zoo.models.saving import load_keras_model
from zoo.training.callbacks import Checkpointer, DivergenceGuard, Throughput
from zoo.training.compile import compile_model, resolve_xla
from zoo.training.run_directory import CHECKPOINT, read_state, run_directory


class TrainingDiverged(ZooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


def train(experiment: Experiment, workdir: str | Path | None = None) -> dict[str, Any]:
    """Trains `experiment` in `workdir` (resuming an unfinished run there), exports it, returns the summary."""
    started = time.perf_counter()
    check_installed(experiment.export.formats())  # before training, not after it
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
        model = load_keras_model(run_dir / CHECKPOINT, compile=True)
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
    """Exports the trained model (each artifact verified), writes summary.json and prints where things are."""
    from zoo.deploy.export import export_run

    last = state["history"][-1]
    artifacts = export_run(run_dir, model, data, experiment)
    export_dir = artifacts.get("saved_model")
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
        "artifacts": {name: str(path) for name, path in artifacts.items()},
    }
    files.write_json(run_dir / "summary.json", summary)
    metrics = summary["metrics"]
    print(f"\n{experiment.name}: {summary['epochs']} epochs of {summary['model']} on {data.name}: "
          f"eval top-1 {metrics['eval_accuracy']:.2%}, top-5 {metrics['eval_top5']:.2%}, loss {metrics['eval_loss']:.4f}; "
          f"{summary['train_images_per_sec']:,.0f} training images/s, {summary['wall_seconds']:.0f} s in all")
    print(f"run:        {run_dir}")
    if export_dir:
        print(f"SavedModel: {export_dir}  (serving_default: uint8 images -> probabilities, class)")
    for name, path in artifacts.items():
        if name != "saved_model":
            print(f"{name + ':':<12}{path}")
    return summary
