"""train.freeze and train.freeze_epochs: frozen layers (batch norm statistics included) stay bit-identical,
the rest trains, and a run resumed in the unfrozen phase lands there and ends where an uninterrupted one does."""
import json
import os
import shutil

import keras
import numpy as np
import pytest
from helpers import ROOT, SHORT

from zoo.common.errors import ConfigError
from zoo.experiment import load_experiment
from zoo.training.trainer import train

# ResNet-20 with one block a stage (ResNet-8): the same stages, branches and batch norms, half the time to build
BASE = [*SHORT, "model.base=resnet20", "model.layers={stage1: {repeat: 1}, stage2: {repeat: 1}, stage3: {repeat: 1}}",
        "export.saved_model=false"]


def run(tmp_path, patterns_dir, name, *settings):
    keras.backend.clear_session()
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [*BASE, f"data.data_dir={patterns_dir}", *settings])
    summary = train(experiment, tmp_path / name)
    model = keras.saving.load_model(tmp_path / name / "model.keras", compile=False)
    return summary, {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def identical(a, b, names):
    return all(np.array_equal(x, y) for name in names for x, y in zip(a[name], b[name]))


@pytest.fixture(scope="module")
def start(tmp_path_factory, patterns_dir):
    """A one-epoch ResNet-20 to fine-tune from."""
    root = tmp_path_factory.mktemp("freeze")
    return root, run(root, patterns_dir, "start", "train.epochs=1")[1]


def test_frozen_layers_and_their_batch_norm_statistics_do_not_change(start, patterns_dir, tmp_path):
    root, before = start
    _, after = run(tmp_path, patterns_dir, "frozen", f"model.weights={root / 'start'}", "train.freeze=stage2")
    frozen = [name for name in before if name.startswith(("conv1", "stage1", "stage2"))]
    assert "stage2_2_bn" in frozen  # its gamma, beta, moving mean and moving variance
    assert identical(before, after, frozen)
    assert not any(identical(before, after, [name]) for name in before if name.startswith(("stage3", "predictions")))


def test_head_first_then_everything_and_a_resume_lands_in_the_second_phase(start, patterns_dir, tmp_path, capsys):
    root, before = start
    settings = (f"model.weights={root / 'start'}", "train.freeze=all_but_head", "train.freeze_epochs=1")
    _, whole = run(tmp_path, patterns_dir, "whole", *settings)
    assert "epoch 2: unfroze" in capsys.readouterr().out
    assert not identical(before, whole, ["stage1_1_conv"])  # trained in epoch 2
    # As if killed after epoch 1: its checkpoint and records only.
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", cut)
    os.remove(cut / "checkpoints" / "epoch-0002.keras")
    state = json.loads((cut / "state.json").read_text())
    (cut / "state.json").write_text(json.dumps({**state, "epoch": 1, "history": state["history"][:1]}))
    for name in ("summary.json", "model.keras"):
        os.remove(cut / name)
    _, resumed = run(tmp_path, patterns_dir, "cut", *settings)
    output = capsys.readouterr().out
    assert "resuming" in output and "epoch 2: unfroze" in output
    assert identical(whole, resumed, list(whole))


@pytest.mark.parametrize("settings, message", [
    (["train.freeze=stage4"], "unknown layer of resnet20 'stage4'"),
    (["train.freeze=stag3"], "did you mean 'stage3'"),
    (["train.freeze_epochs=1"], "expected train.freeze"),
    (["train.freeze=stage1", "train.freeze_epochs=2"], "expected fewer than train.epochs (2)"),
])
def test_bad_freeze_settings_are_refused_before_training(settings, message, patterns_dir, tmp_path):
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [*BASE, f"data.data_dir={patterns_dir}", *settings])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train(experiment, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # not even an empty run directory with its lock
