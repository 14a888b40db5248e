"""The trainer end to end: short runs, resumes, the SavedModel round trip, evaluation, errors (kill -9 is
test_faults.py's).

Runs on the embedded zoo_patterns dataset (generated into a temporary data_dir) and, when
TFDS_DATA_DIR is set, on the real MNIST and CIFAR-10 prepared there.
"""
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from helpers import ROOT, SHORT, assert_one_line_error, needs_bfloat16_kernels, run, run_here

from zoo.common.errors import ZooError
from zoo.deploy.evaluation import evaluate
from zoo.experiment import load_experiment
from zoo.training.run_directory import read_state
from zoo.training.trainer import train

TFDS_DATA_DIR = os.environ.get("TFDS_DATA_DIR")
needs_tfds = pytest.mark.skipif(not TFDS_DATA_DIR, reason="TFDS_DATA_DIR is unset: no prepared MNIST/CIFAR-10 to read")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, patterns_dir):
    workdir = tmp_path_factory.mktemp("run")
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml", [*SHORT, f"data.data_dir={patterns_dir}"])
    return workdir, train(experiment, workdir)


def test_run_writes_summary_metrics_checkpoint_and_exports(default_run):
    workdir, summary = default_run
    assert {"experiment", "model", "params", "macs", "epochs", "xla", "train_images_per_sec", "wall_seconds",
            "metrics", "export_dir"} <= set(summary)
    assert summary["epochs"] == 2 and summary["xla"] is False  # auto resolves to off on a CPU-only machine
    assert set(summary["metrics"]) == {"train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "eval_top5"}
    assert json.loads((workdir / "summary.json").read_text()) == summary
    lines = (workdir / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    assert (workdir / "config.yaml").exists() and (workdir / "model.keras").exists()
    assert list((workdir / "tensorboard").rglob("events.out.tfevents.*"))


def test_saved_model_round_trip_and_refused_inputs(default_run):
    workdir, _ = default_run
    serving = tf.saved_model.load(str(workdir / "saved_model")).signatures["serving_default"]
    model = keras.saving.load_model(workdir / "model.keras")
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 1), dtype=np.uint8)
    out = serving(images=tf.constant(images))
    expected = model.predict((images / 255.0 - 0.5) / 0.25, verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(out["class"].numpy(), expected.argmax(1))
    assert serving(images=tf.constant(images[:1]))["probabilities"].shape == (1, 10)  # any batch size
    bigger = serving(images=tf.constant(np.zeros((2, 64, 48, 1), np.uint8)))  # any size: resized inside
    assert bigger["probabilities"].shape == (2, 10)
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serving(images=tf.constant(images.astype(np.float32)))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serving(images=tf.constant(images[0]))  # rank 3


def test_evaluate_works_on_a_saved_model_alone(default_run, tmp_path, patterns_dir):
    workdir, summary = default_run
    alone = tmp_path / "exported"
    shutil.copytree(workdir / "saved_model", alone)
    from_run = evaluate(workdir)
    from_alone = evaluate(alone, data="zoo_patterns", data_dir=patterns_dir, out_dir=tmp_path / "eval")
    assert from_alone["accuracy"] == from_run["accuracy"]
    assert from_run["examples"] == 1200 and len(from_run["per_class"]) == 10
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 0
    assert (tmp_path / "eval" / "confusion_matrix.csv").read_text().count("\n") == 11
    result = run_here("evaluate.py", str(workdir), "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)["results"]  # one per artifact: the SavedModel and model.keras
    assert [r["format"] for r in printed] == ["saved_model", "keras"]
    for evaluated in printed:
        assert {"accuracy", "top5", "per_class", "images_per_sec"} <= set(evaluated)
        assert evaluated["accuracy"] == from_run["accuracy"]


def test_rerun_of_a_finished_run_does_nothing(default_run, patterns_dir):
    workdir, summary = default_run
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml", [*SHORT, f"data.data_dir={patterns_dir}"])
    assert train(experiment, workdir) == summary


def test_workdir_of_another_experiment_is_refused(default_run, patterns_dir):
    workdir, _ = default_run
    result = run_here("train.py", "configs/experiments/default.yaml", "--workdir", str(workdir),
                      *[f"--set={s}" for s in [*SHORT, f"data.data_dir={patterns_dir}", "train.seed=1"]])
    assert_one_line_error(result, "holds a run of a different configuration", "train")


def test_reexport_command(default_run):
    workdir, _ = default_run
    result = run_here("-m", "zoo", "export", str(workdir))
    assert result.returncode == 0, result.stderr
    assert (workdir / "saved_model" / "saved_model.pb").exists()


def test_a_run_saved_before_new_export_keys_still_resumes(default_run, tmp_path, patterns_dir):
    workdir, _ = default_run
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml", [*SHORT, f"data.data_dir={patterns_dir}"])
    older = yaml.safe_load((workdir / "config.yaml").read_text())
    older["export"] = {"saved_model": True, "keras": True}  # as written before litert, onnx, ... existed
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(older))
    assert read_state(tmp_path, experiment) == ({"epoch": 0, "history": []}, False)  # (state, recorded)
    older["export"]["keras"] = False
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(older))
    with pytest.raises(ZooError, match="sections differing: export"):
        read_state(tmp_path, experiment)


@pytest.mark.parametrize("path", sorted((ROOT / "configs/experiments").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_loads_and_builds_its_model_config(path):
    from zoo.models.analysis import analyze

    params = analyze(load_experiment(path).model_config()).params  # a typo or bad shape raises here
    assert params > 0
    if path.stem.startswith("cifar10_resnet20"):
        assert params == 271_098  # He et al. 2015's ResNet-20 (0.27M)


def test_eval_every_scores_every_nth_epoch_and_the_last(tmp_path, patterns_dir):
    from zoo.studies.visualize import plot_training_curves

    overrides = [*SHORT, "train.epochs=3", "train.eval_every=2", f"data.data_dir={patterns_dir}",
                 "export.saved_model=false", "export.keras=false"]
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml", overrides)
    assert experiment.train.eval_epochs() == [2, 3]
    summary = train(experiment, tmp_path / "run")
    state, _ = read_state(tmp_path / "run", experiment)
    assert ["eval_accuracy" in row for row in state["history"]] == [False, True, True]
    assert summary["metrics"]["eval_accuracy"] == state["history"][-1]["eval_accuracy"]
    assert plot_training_curves(tmp_path / "run" / "metrics.csv", tmp_path / "curves.png").stat().st_size > 0


def test_bad_set_key_is_one_line_with_did_you_mean():
    result = run("train.py", "configs/experiments/default.yaml", "--set", "train.epohcs=3")
    assert_one_line_error(result, "--set", "train.epohcs", "did you mean 'epochs'?")


@pytest.mark.parametrize("command, env, fragment", [
    ("train.main(['configs/experiments/default.yaml', '--set', 'train.epohcs=3'])", {}, "did you mean 'epochs'"),
    ("train.main(['configs/experiments/default.yaml', '--workdir', 'run'])", {"TF_CONFIG": "{not json"},
     "TF_CONFIG: expected JSON"),
    ("evaluate.main(['runs/any', '--format', 'onx'])", {}, "unknown format 'onx'"),
    ("zoo.cli.commands.main(['export', 'runs/any', '--format', 'tflite'])", {}, "unknown format 'tflite'"),
    ("zoo.cli.commands.main(['predict', 'lenet5_mnst', 'x.png'])", {}, "did you mean 'lenet5_mnist'"),
], ids=["config", "tf-config", "evaluate-format", "export-format", "predict-preset"])
def test_a_mistyped_argument_is_answered_before_tensorflow_is_imported(command, env, fragment):
    code = f"import sys, train, evaluate, zoo.cli.commands\ntry: {command}\nexcept SystemExit as e: " \
           "print(e.code, 'tensorflow' in sys.modules)"
    result = run("-c", code, env=env)
    assert result.stdout.split() == ["2", "False"] and fragment in result.stderr, result.stdout + result.stderr


def test_bad_set_value_names_the_key():
    result = run("train.py", "configs/experiments/default.yaml", "--set", "model.layers.conv1.kernel_size=0")
    assert_one_line_error(result, "model.layers[0].kernel_size", "received 0")


def test_missing_dataset_says_what_was_tried(tmp_path):
    result = run_here("train.py", "configs/experiments/mnist_lenet5.yaml", "--set", f"data.data_dir={tmp_path}")
    assert_one_line_error(result, "'mnist' is not prepared", str(tmp_path), "data.manual_dir", "data.download")


def test_unknown_dataset_has_a_did_you_mean(tmp_path):
    result = run_here("train.py", "configs/experiments/mnist_lenet5.yaml", "--set", "data.name=mnits")
    assert_one_line_error(result, "unknown TFDS dataset 'mnits'", "did you mean 'mnist'")


def test_diverging_loss_stops_with_a_clear_message(tmp_path, patterns_dir):
    result = run_here("train.py", "configs/experiments/default.yaml", "--workdir", str(tmp_path / "run"),
                      *[f"--set={s}" for s in [*SHORT, f"data.data_dir={patterns_dir}", "train.optimizer.name=sgd",
                                               "train.optimizer.learning_rate=1.0e+30",
                                               "train.schedule.name=constant", "train.schedule.warmup_epochs=0"]])
    assert result.returncode == 1, result.stderr[-2000:]
    assert "loss became NaN or infinite at epoch 1" in result.stderr
    assert not list((tmp_path / "run").rglob("*.keras"))


@pytest.mark.slow  # 70,000 images encoded and written: 25-31 s of the suite on the Zen 3
@needs_tfds
def test_mnist_prepares_from_manual_dir_without_network(tmp_path):
    import tensorflow_datasets as tfds

    from zoo.data.sources import dataset_builder
    from zoo.experiment import DataConfig

    manual = Path(TFDS_DATA_DIR).resolve().parent / "datasets" / "mnist"  # shared/datasets beside shared/tfds
    if not manual.exists():
        pytest.skip(f"no MNIST archives at {manual}")
    builder = dataset_builder(DataConfig(name="mnist", data_dir=str(tmp_path), manual_dir=str(manual)))
    assert builder.is_prepared()
    assert builder.info.splits["train"].num_examples == 60_000
    assert builder.info.splits["test"].num_examples == 10_000
    assert tfds.builder("mnist", data_dir=str(tmp_path)).is_prepared()


def test_a_run_resumed_under_newer_code_keeps_the_commit_it_started_at(tmp_path, patterns_dir, monkeypatch):
    from zoo.common import provenance

    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [*SHORT, f"data.data_dir={patterns_dir}", "export.saved_model=false"])
    monkeypatch.setattr(provenance, "source_commit", lambda: "a" * 40)
    assert train(experiment, tmp_path)["commit"] == "a" * 40
    # As if the session had ended after epoch 1: its records and checkpoint only, then a new commit.
    state = json.loads((tmp_path / "state.json").read_text())
    (tmp_path / "state.json").write_text(json.dumps({**state, "epoch": 1, "history": state["history"][:1]}))
    (tmp_path / "checkpoints" / "epoch-0002.keras").unlink()
    (tmp_path / "summary.json").unlink()
    monkeypatch.setattr(provenance, "source_commit", lambda: "b" * 40)
    summary = train(experiment, tmp_path)
    assert summary["epochs"] == 2 and summary["commit"] == "a" * 40 and summary["resumed_at_commits"] == ["b" * 40]
    assert json.loads((tmp_path / "state.json").read_text())["commits"] == ["a" * 40, "b" * 40]
    # A lost state.json is recovered from metrics.csv, which does not say where the run started.
    (tmp_path / "state.json").unlink()
    (tmp_path / "summary.json").unlink()
    monkeypatch.setattr(provenance, "source_commit", lambda: "c" * 40)
    summary = train(experiment, tmp_path)
    assert summary["commit"] is None and summary["resumed_at_commits"] == ["c" * 40]


@needs_tfds
def test_cifar10_resnet20_runs_end_to_end(tmp_path):
    experiment = load_experiment(ROOT / "configs/experiments/cifar10_resnet20.yaml",
                                 ["train.epochs=1", "train.steps_per_epoch=4", "train.eval_steps=2",
                                  "train.batch_size=32"])
    summary = train(experiment, tmp_path)
    assert summary["model"] == "resnet20" and summary["params"] == 271_098
    assert 0 <= summary["metrics"]["eval_accuracy"] <= 1
    assert (tmp_path / "saved_model" / "saved_model.pb").exists()


def test_folder_of_own_images_trains(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("test", 4)):
        for label in ("dark", "light"):
            folder = tmp_path / "images" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                value = 40 if label == "dark" else 210
                image = np.clip(rng.normal(value, 10, (20 + i, 24, 3)), 0, 255).astype(np.uint8)
                (folder / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml", [
        f"data.folder={tmp_path / 'images'}", "data.image_size=[32, 32]", "train.epochs=1", "train.steps_per_epoch=2",
        "train.batch_size=8", "data.mean=[0.5]", "data.std=[0.25]"])
    summary = train(experiment, tmp_path / "run")
    assert summary["input_shape"] == [32, 32, 3] and summary["num_classes"] == 2


@pytest.mark.parametrize("setting", ["train.xla=on", pytest.param("train.precision=mixed_bfloat16",
                                                                  marks=needs_bfloat16_kernels)])
def test_xla_and_mixed_precision_runs_are_recorded(setting, tmp_path, patterns_dir):
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 ["train.epochs=1", "train.steps_per_epoch=2", "train.eval_steps=1",
                                  "train.batch_size=16", f"data.data_dir={patterns_dir}", setting])
    try:
        summary = train(experiment, tmp_path)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert summary["xla"] is (setting == "train.xla=on")
    assert summary["precision"] == experiment.train.precision
    assert (tmp_path / "saved_model" / "saved_model.pb").exists()


def test_precision_and_xla_auto_are_resolved_and_recorded_with_reasons(tmp_path, patterns_dir):
    from zoo.common.cpu import this_cpu

    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [*SHORT, "train.epochs=1", "train.precision=auto", f"data.data_dir={patterns_dir}"])
    try:
        summary = train(experiment, tmp_path)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert summary["precision"] == ("mixed_bfloat16" if this_cpu().bfloat16_units else "float32")
    assert summary["precision_reason"].startswith("auto: ") and summary["xla_reason"].startswith("auto: ")


def test_steps_per_execution_changes_the_speed_not_the_result(tmp_path):
    """6 steps per call train to the weights of one step per call. The second run is also the proof that
    a fresh data_dir (prepared during the first run) and a run after another in the same process start
    from the same weights as any other run of the seed."""
    summaries, weights = {}, {}
    for run_name, setting in (("first", "1"), ("auto", "auto")):
        experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                     [*SHORT, f"train.steps_per_execution={setting}", f"data.data_dir={tmp_path}/tfds",
                                      "export.saved_model=false"])
        keras.backend.clear_session()  # Keras's global seed generator starts afresh, as in a new process
        summaries[run_name] = train(experiment, tmp_path / run_name)
        weights[run_name] = keras.saving.load_model(tmp_path / run_name / "model.keras").get_weights()
    assert summaries["first"]["steps_per_execution"] == 1
    assert summaries["auto"]["steps_per_execution"] == 6  # SHORT's 6 steps an epoch: all in one call
    assert summaries["auto"]["steps_per_execution_reason"].startswith("auto: ")
    assert summaries["auto"]["train_images_per_sec"] > 0  # counted from the batch indices, 6 steps per callback
    for a, b in zip(weights["first"], weights["auto"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert summaries["auto"]["command"] and "commit" in summaries["auto"]
    assert isinstance(summaries["auto"]["onednn"], bool) and summaries["auto"]["onednn_reason"]


def test_steps_per_execution_must_divide_the_epoch_and_nothing_is_written(tmp_path, patterns_dir):
    result = run_here("train.py", "configs/experiments/default.yaml", "--workdir", str(tmp_path / "run"),
                      *[f"--set={s}" for s in SHORT], "--set", "train.steps_per_execution=4",
                      "--set", f"data.data_dir={patterns_dir}")
    assert_one_line_error(result, "train.steps_per_execution: expected a divisor of the epoch's 6 steps")
    assert not (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.parametrize("setting, steps, distribute, expected", [
    ("auto", 390, "none", 15), ("auto", 468, "none", 13), ("auto", 97, "none", 1), ("auto", 8, "none", 8),
    (5, 390, "none", 5), ("auto", 390, "mirrored", 1), ("auto", 390, "multi_worker", 1), (1, 390, "mirrored", 1),
])
def test_steps_per_execution_resolves_to_a_divisor_and_to_one_under_a_strategy(setting, steps, distribute, expected):
    from zoo.training.compile import resolve_steps_per_execution

    assert resolve_steps_per_execution(setting, steps, distribute)[0] == expected


def test_several_steps_per_call_under_mirrored_is_refused_before_training():
    from zoo.common.errors import ConfigError
    from zoo.training.compile import resolve_steps_per_execution

    with pytest.raises(ConfigError, match="expected auto or 1 under train.distribute: mirrored"):
        resolve_steps_per_execution(5, 390, "mirrored")
