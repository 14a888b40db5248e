"""Training recipes: a run with every recipe key on trains, records them and scores TTA beside the single view;
the weight average is what ships and what checkpoints carry on; no decay on biases and batch norm."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from helpers import RECIPE, ROOT, SHORT, assert_one_line_error, run_here

from zoo.deploy.evaluation import evaluate, format_result
from zoo.experiment import OptimizerConfig, TrainConfig, load_experiment
from zoo.models.saving import load_keras_model
from zoo.training.checkpoints import saved_checkpoints
from zoo.training.compile import exclude_norm_and_bias, make_optimizer, make_schedule
from zoo.training.trainer import train


CREATED_WHILE_TRACING: list[str] = []  # the recipe run's variables made inside a tf.function's trace


def _note_variables_created_while_tracing(next_creator, **kwargs):
    if not tf.executing_eagerly():
        CREATED_WHILE_TRACING.append(kwargs.get("name") or "?")
    return next_creator(**kwargs)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory, patterns_dir):
    workdir = tmp_path_factory.mktemp("recipe")
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [*SHORT, f"data.data_dir={patterns_dir}", *RECIPE])
    with tf.variable_creator_scope(_note_variables_created_while_tracing):
        return workdir, train(experiment, workdir)


def test_the_training_step_creates_no_variable_so_it_is_traced_once(recipe_run):
    # tf.function traces a function that creates variables twice; the metrics, the optimizer and its
    # weight average are built before fit (zoo.training.compile.build_training_state).
    assert CREATED_WHILE_TRACING == []


def test_every_recipe_key_trains_and_is_recorded(recipe_run):
    workdir, summary = recipe_run
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    assert config["train"]["ema_momentum"] == 0.9 and config["train"]["eval_tta"] == "flip"
    assert config["data"]["augment"]["rand_augment"] == {"num_ops": 2, "magnitude": 9.0}
    assert config["train"]["optimizer"]["decay_norm_and_bias"] is False
    metrics = json.loads((workdir / "summary.json").read_text())["metrics"]
    assert 0 <= metrics["eval_accuracy_tta_flip"] <= 1 and metrics["eval_accuracy"] is not None  # beside, not instead


def test_the_weight_average_ships_and_the_checkpoint_carries_it_on(recipe_run):
    workdir, _ = recipe_run
    shipped = load_keras_model(workdir / "model.keras")
    (_, newest), *_ = saved_checkpoints(workdir)
    checkpoint = load_keras_model(newest, compile=True)
    assert checkpoint.optimizer.use_ema and checkpoint.optimizer.ema_momentum == pytest.approx(0.9)
    raw = [v.numpy().copy() for v in checkpoint.trainable_variables]
    assert not all(np.array_equal(a, b.numpy()) for a, b in zip(raw, shipped.trainable_variables))  # not the raw
    checkpoint.optimizer.finalize_variable_values(checkpoint.trainable_variables)  # the average it holds
    for averaged, exported in zip(checkpoint.trainable_variables, shipped.trainable_variables):
        np.testing.assert_allclose(averaged.numpy(), exported.numpy(), rtol=1e-6, atol=1e-7)


def _decay_only_step(model: keras.Model) -> dict[str, bool]:
    """One update with zero gradients, so only weight decay moves a variable: which ones moved."""
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    model.optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in model.trainable_variables])
    return {v.path: not np.array_equal(before[v.path], v.numpy()) for v in model.trainable_variables}


@pytest.mark.parametrize("decay_norm_and_bias", [True, False])
def test_no_decay_on_biases_and_batch_norm_when_asked_also_after_a_restore(tmp_path, decay_norm_and_bias):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    for variable in model.trainable_variables:  # biases and beta start at 0, which decay would leave as it is
        variable.assign(np.full(variable.shape, 0.5, "float32"))
    config = TrainConfig(optimizer=OptimizerConfig(momentum=0.0, weight_decay=0.1,
                                                   decay_norm_and_bias=decay_norm_and_bias))
    model.compile(optimizer=make_optimizer(config.optimizer, make_schedule(config, 10)), loss="mse")
    moved = _decay_only_step(model)
    expected = {"conv/kernel": True, "dense/kernel": True, "conv/bias": decay_norm_and_bias,
                "bn/gamma": decay_norm_and_bias, "bn/beta": decay_norm_and_bias, "dense/bias": decay_norm_and_bias}
    assert moved == expected
    model.save(tmp_path / "checkpoint.keras")  # a resumed run's optimizer comes back without the exclusion
    restored = load_keras_model(tmp_path / "checkpoint.keras", compile=True)
    if not decay_norm_and_bias:
        exclude_norm_and_bias(restored.optimizer)
    assert _decay_only_step(restored) == expected


def test_evaluate_scores_flip_tta_beside_the_single_view_as_training_did(recipe_run):
    # The trainer scored its evaluation batches (the first 3 x 32 test images) with the Keras model
    # and the weight average swapped in; evaluate.py runs the SavedModel, made of the average, on uint8.
    workdir, summary = recipe_run
    result = evaluate(workdir, split="test[:96]", tta="flip")
    assert result["examples"] == 96
    assert result["accuracy"] == pytest.approx(summary["metrics"]["eval_accuracy"], abs=1e-6)
    assert result["tta"] == {"views": "flip", "accuracy": pytest.approx(summary["metrics"]["eval_accuracy_tta_flip"]),
                             "top5": pytest.approx(result["tta"]["top5"])}
    assert "with flip TTA: top-1" in format_result(result)


def test_an_unknown_tta_is_one_line(recipe_run):
    workdir, _ = recipe_run
    assert_one_line_error(run_here("evaluate.py", str(workdir), "--tta", "crop"),
                          "--tta: expected one of flip, received 'crop'")
