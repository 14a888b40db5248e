"""The trainer: one function, `train(experiment)`, for every model config and dataset.

Read it top to bottom: resolve the tf.distribute strategy and the run directory (resuming if it
holds an unfinished run of the same experiment), load the data, build and compile the model under
the strategy (or restore the last checkpoint), fit (or, with several workers, zoo.training.loop)
with per-epoch checkpoints and metrics, then export and verify, and write summary.json.
"""
from __future__ import annotations

import contextlib
import functools
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import keras
import yaml

from zoo.common import files, locks, provenance
from zoo.common.cpu import onednn_setting, this_cpu
from zoo.common.errors import ZooError
from zoo.data.pipeline import Data, load_data
from zoo.deploy.formats import check_installed
from zoo.experiment import Experiment
from zoo.models.analysis import analyze
from zoo.models.builder import build_model
from zoo.training.callbacks import Checkpointer, DivergenceGuard, Throughput
from zoo.training.checkpoints import load_newest_checkpoint, saved_checkpoints
from zoo.training.compile import (build_training_state, compile_model, exclude_norm_and_bias, make_loss,
                                  resolve_precision, resolve_steps_per_execution, resolve_xla)
from zoo.training.cluster import this_worker
from zoo.training.distribute import Distribution, resolve_distribution, stopping_if_a_worker_is_lost
from zoo.training.freezing import check_freeze, frozen_layer_names, frozen_now, set_frozen
from zoo.training.initial_weights import load_into, open_initial_weights, weights_record
from zoo.training.loop import fit_distributed
from zoo.training.run_directory import read_state, run_directory


WORKERS_DIR = ".workers"  # in the run directory: the non-chief workers' own copies of what they save


class TrainingDiverged(ZooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


def train(experiment: Experiment, workdir: str | Path | None = None) -> dict[str, Any]:
    """Trains `experiment` in `workdir` (resuming an unfinished run there), exports it, returns the summary.

    Under multi_worker every worker runs this with the same `workdir`: all read the run directory
    to resume from the same checkpoint, only the chief writes it, and the others write the same
    files to a directory of their own, `.workers/INDEX` in the run directory, removed when they finish
    (tf.distribute wants every worker to save).
    """
    started = time.perf_counter()
    distribution = resolve_distribution(experiment.train.distribute, experiment.train.batch_size,
                                        this_worker(workdir))
    check_installed(experiment.export.formats())  # before training, not after it
    run_dir = run_directory(experiment, workdir)
    fresh = not run_dir.exists()
    try:
        with contextlib.ExitStack() as stack:
            out_dir = run_dir
            if not distribution.cluster.is_chief:
                # One fixed directory per worker, not a fresh temporary one: a worker killed outright leaves
                # it behind, inside the run it belongs to, and its restart reuses it instead of adding another.
                out_dir = run_dir / WORKERS_DIR / str(distribution.cluster.index)
                stack.callback(_remove_worker_dir, out_dir)
            stack.enter_context(locks.exclusive(out_dir))  # a second process on the same directory is refused
            stack.enter_context(stopping_if_a_worker_is_lost(distribution, run_dir))
            return _train(experiment, run_dir, out_dir, distribution, started)
    except ZooError:
        if fresh:  # a setting refused before anything was written leaves no empty run directory behind
            _remove_if_only_the_lock(run_dir)
        raise


def _remove_if_only_the_lock(run_dir: Path) -> None:
    with contextlib.suppress(OSError):  # never in the way of the error being reported
        if [path.name for path in run_dir.iterdir()] == [locks.LOCK_FILE]:
            (run_dir / locks.LOCK_FILE).unlink()
            run_dir.rmdir()


def _remove_worker_dir(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
    with contextlib.suppress(OSError):  # other workers' directories may still be there
        out_dir.parent.rmdir()


def _train(experiment: Experiment, run_dir: Path, out_dir: Path, distribution: Distribution,
           started: float) -> dict[str, Any]:
    check_freeze(experiment.train.freeze, experiment.train.freeze_epochs, experiment.train.epochs,
                 experiment.model_config(), distribution.name)
    # Before anything is read or trained: a bad source stops the run here, and the normalisation it
    # brings is part of the experiment the run directory records.
    experiment, weights = open_initial_weights(experiment)
    state, recorded = read_state(run_dir, experiment)
    if (run_dir / "summary.json").exists() and state["epoch"] >= experiment.train.epochs:
        print(f"{run_dir}: already finished ({state['epoch']} epochs); nothing to do")
        return json.loads((run_dir / "summary.json").read_text())

    config = experiment.train
    precision, precision_reason = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(precision)
    xla, xla_reason = resolve_xla(config.xla, distribution.name)
    onednn, onednn_reason = onednn_setting()
    model_config = experiment.model_config()
    data = load_data(experiment.data, model_input_size=model_config.input_shape[:2], batch_size=config.batch_size,
                     seed=config.seed, steps_per_epoch=config.steps_per_epoch, eval_steps=config.eval_steps)
    # Seeded after the data is loaded: preparing a dataset on first use draws from TensorFlow's global
    # random state, and the first run on a fresh data_dir used to start from other weights than the rest.
    keras.utils.set_random_seed(config.seed)
    model_config = model_config.with_overrides((*data.preprocessing.image_size, data.preprocessing.channels),
                                               data.num_classes)
    analysis = analyze(model_config)
    steps_per_execution, steps_reason = resolve_steps_per_execution(config.steps_per_execution, data.steps_per_epoch,
                                                                    distribution.name)

    scope = distribution.strategy.scope()  # variables and the optimizer are created per replica under it
    if state["epoch"] or saved_checkpoints(run_dir):
        # A checkpoint holds the model, the optimizer's state and the schedule (a function of the
        # optimizer's step), so training continues exactly where that epoch left it. state.json is
        # written after its checkpoint, so its epoch is the newest one fully recorded.
        with scope:
            epoch, model = load_newest_checkpoint(run_dir, at_most=state["epoch"] if recorded else None)
        if not config.optimizer.decay_norm_and_bias:  # not in the optimizer's saved config
            exclude_norm_and_bias(getattr(model.optimizer, "inner_optimizer", model.optimizer))
        if epoch < state["epoch"]:
            print(f"going back to epoch {epoch}, the newest readable checkpoint (the run's records reached epoch "
                  f"{state['epoch']})")
        state["epoch"], state["history"] = epoch, [row for row in state["history"] if row["epoch"] <= epoch]
        print(f"resuming {run_dir} at epoch {epoch + 1} of {config.epochs}" if epoch < config.epochs else
              f"{run_dir}: all {config.epochs} epochs are trained; exporting")
    else:
        with scope:
            model = build_model(model_config, sync_batch_norm=config.sync_batch_norm)
            if weights:
                load_into(model, weights, model_config, out_dir, data.class_names)
            set_frozen(model, frozen_layer_names(model, model_config, config.freeze)
                       if frozen_now(0, config.freeze, config.freeze_epochs) else set())
            compile_model(model, config, data.steps_per_epoch, xla, steps_per_execution)
    frozen = frozen_layer_names(model, model_config, config.freeze)
    # A long run resumed across sessions may train under newer code: the commit it started at is the
    # run's, and each later one it was resumed under is kept beside it, not put in its place.
    # A run recorded before commits were kept, or recovered from metrics.csv, started at an unknown one.
    commit = provenance.source_commit()
    state.setdefault("commits", [None] if state["epoch"] else [])
    if commit not in state["commits"]:
        state["commits"].append(commit)

    def enter_phase(epoch: int) -> None:
        """The trainable flags for the epoch after `epoch`; a change needs a new optimizer (Keras builds
        one for a fixed set of variables), whose step count carries the schedule on."""
        freezing = frozen_now(epoch, config.freeze, config.freeze_epochs)
        if set_frozen(model, frozen if freezing else set()):
            iterations = int(model.optimizer.iterations.numpy())
            with distribution.strategy.scope():  # a scope object is entered once; this is a new one
                compile_model(model, config, data.steps_per_epoch, xla, steps_per_execution)
                model.optimizer.iterations.assign(iterations)
            print(f"epoch {epoch + 1}: {'froze' if freezing else 'unfroze'} {len(frozen)} layers (train.freeze: "
                  f"{config.freeze}); the schedule continues at step {iterations}")

    enter_phase(state["epoch"])  # a resumed run lands in the phase of its next epoch
    model.steps_per_execution = steps_per_execution  # a checkpoint restores the value it was saved with
    # Written once everything that can refuse this experiment has accepted it: a refused one leaves no
    # config.yaml behind that would make its corrected rerun "a different configuration".
    files.write_atomic(out_dir / "config.yaml", yaml.safe_dump(experiment.to_dict(), sort_keys=False))
    print(f"{experiment.name}: {model_config.name} ({analysis.params:,} parameters, {analysis.macs:,} MACs) on "
          f"{data.name} {data.preprocessing.image_size[0]}x{data.preprocessing.image_size[1]}x"
          f"{data.preprocessing.channels}, {data.num_classes} classes; {data.train_examples:,} training images, "
          f"{data.steps_per_epoch} steps of {config.batch_size} per epoch, {steps_per_execution} per call; "
          f"xla: {'on' if xla else 'off'} ({xla_reason}); precision: {precision} ({precision_reason}); "
          f"oneDNN: {'on' if onednn else 'off'} ({onednn_reason})")
    print(distribution.describe())

    guard, throughput = DivergenceGuard(), Throughput(config.batch_size)
    # With a weight average, evaluation swaps it in and back (Keras's callback, first so that the
    # others see the epoch's scores of the average); checkpoints keep the raw weights, and the
    # average in the optimizer's state, so a resumed run continues both.
    callbacks = [*([keras.callbacks.SwapEMAWeights()] if config.ema_momentum else []), guard, throughput, Checkpointer(out_dir, state, guard, throughput, config.keep_checkpoints),
                 keras.callbacks.TensorBoard(str(out_dir / "tensorboard"), write_graph=False, profile_batch=0)]
    verbose = 1 if sys.stdout.isatty() else 2
    # A resumed run continues the sequence of batches where its last finished epoch left it.
    train_batches = functools.partial(data.train, skip_batches=state["epoch"] * data.steps_per_epoch)
    if state["epoch"] < config.epochs and distribution.name == "multi_worker":
        fit_distributed(model, distribution, train_batches, data.eval, loss=make_loss(config, reduction=None),
                        epochs=config.epochs, initial_epoch=state["epoch"], steps_per_epoch=data.steps_per_epoch,
                        eval_steps=data.eval_steps, eval_epochs=config.eval_epochs(), callbacks=callbacks,
                        verbose=verbose)
    else:  # fit distributes the global batches itself under MirroredStrategy
        # One fit per phase: frozen epochs, then the rest (a run without freeze_epochs has one phase).
        bounds = sorted({epoch for epoch in (state["epoch"], config.freeze_epochs or 0, config.epochs)
                         if epoch >= state["epoch"]})
        for start, end in zip(bounds, bounds[1:]):
            if guard.diverged_at:
                break
            enter_phase(start)
            model.steps_per_execution = steps_per_execution
            with distribution.strategy.scope():
                build_training_state(model)
            batches = functools.partial(data.train, skip_batches=start * data.steps_per_epoch)
            model.fit(batches(None), epochs=end, initial_epoch=start, steps_per_epoch=data.steps_per_epoch,
                      validation_data=data.eval, validation_steps=data.eval_steps,
                      validation_freq=config.eval_epochs(), callbacks=callbacks, shuffle=False,
                      verbose=verbose)  # tf.data shuffles
    if guard.diverged_at:
        epoch, step = guard.diverged_at
        kept = f"the checkpoint of epoch {state['epoch']} is kept" if state["epoch"] else "no epoch had finished"
        raise TrainingDiverged(f"the loss became NaN or infinite at epoch {epoch}, step {step}; training stopped and "
                               f"{kept} in {run_dir} (try a lower train.optimizer.learning_rate)")
    if config.ema_momentum:  # the average becomes the weights every artifact is made of (fit does it too)
        model.optimizer.finalize_variable_values(model.trainable_variables)

    settings = {"xla": xla, "xla_reason": xla_reason, "precision": precision, "precision_reason": precision_reason,
                "onednn": onednn, "onednn_reason": onednn_reason, "steps_per_execution": steps_per_execution,
                "steps_per_execution_reason": steps_reason, "distribute": distribution.record(),
                "weights": weights_record(out_dir)}
    return finish(out_dir, experiment, model, data, state, analysis, settings, time.perf_counter() - started,
                  report=distribution.cluster.is_chief)


def finish(run_dir: Path, experiment: Experiment, model: keras.Model, data: Data, state: dict[str, Any], analysis,
           settings: dict[str, Any], wall_seconds: float, report: bool = True) -> dict[str, Any]:
    """Exports the trained model (each artifact verified), writes summary.json and prints where things are
    (unless not `report`: a worker other than the chief, whose files are temporary)."""
    from zoo.deploy.export import export_run

    last = state["history"][-1] if state["history"] else {}  # empty only if every record of the metrics was lost
    with files.reporting_write_errors(run_dir):  # a full disk while exporting: one line naming the file
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
        **settings,  # xla and precision as resolved, each with its reason
        "train_images_per_sec": round(state.get("train_images_per_sec", 0.0), 1),
        "wall_seconds": round(wall_seconds, 1),
        "metrics": {key: last.get(key) for key in
                    ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "eval_top5")},
        "cpu": this_cpu().describe(),
        "command": provenance.command_line(),
        "commit": state["commits"][0],
        **({"resumed_at_commits": state["commits"][1:]} if len(state["commits"]) > 1 else {}),
        "run_dir": str(run_dir),
        "export_dir": str(export_dir) if export_dir else None,
        "artifacts": {name: str(path) for name, path in artifacts.items()},
    }
    if experiment.train.eval_tta:
        summary["metrics"][f"eval_accuracy_tta_{experiment.train.eval_tta}"] = _tta_accuracy(
            model, data, experiment.train.eval_tta)
    if data.skipped:
        summary["skipped_images"] = {split: {"count": len(paths), "first": list(paths[:5])}
                                     for split, paths in data.skipped.items()}
    files.write_json(run_dir / "summary.json", summary)
    if not report:
        return summary
    metrics = summary["metrics"]
    print(f"\n{experiment.name}: {summary['epochs']} epochs of {summary['model']} on {data.name}: "
          f"eval top-1 {_format(metrics['eval_accuracy'], '.2%')}, top-5 {_format(metrics['eval_top5'], '.2%')}, "
          f"loss {_format(metrics['eval_loss'], '.4f')}; "
          + "".join(f"with {name.removeprefix('eval_accuracy_tta_')} TTA top-1 {value:.2%}; "
                    for name, value in metrics.items() if name.startswith("eval_accuracy_tta_")) +
          f"{summary['train_images_per_sec']:,.0f} training images/s, {summary['wall_seconds']:.0f} s in all")
    print(f"run:        {run_dir}")
    if export_dir:
        print(f"SavedModel: {export_dir}  (serving_default: uint8 images -> probabilities, class)")
    for name, path in artifacts.items():
        if name != "saved_model":
            print(f"{name + ':':<12}{path}")
    return summary


def _tta_accuracy(model: keras.Model, data: Data, views: str) -> float:
    """Top-1 on the evaluation batches of the mean over `views` of each image (zoo.deploy.tta)."""
    from zoo.deploy.tta import predict_with_tta

    correct = total = 0
    for images, labels in data.eval.take(data.eval_steps):
        probabilities = predict_with_tta(lambda x: model(x, training=False), images, views)
        correct += int((probabilities.argmax(1) == labels.numpy().argmax(1)).sum())
        total += len(probabilities)
    return correct / total


def _format(value: float | None, spec: str) -> str:
    return "unknown" if value is None else format(value, spec)
