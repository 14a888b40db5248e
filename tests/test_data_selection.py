"""data.classes, data.examples_per_class and data.channels: choosing and converting the data to fine-tune on."""
import json

import numpy as np
import pytest
from helpers import ROOT, SHORT, run_here

from zoo.common.errors import ZooError
from zoo.experiment import load_experiment
from zoo.data.pipeline import load_data


def data_for(patterns_dir, *settings, batch_size=8):
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [f"data.data_dir={patterns_dir}", *settings])
    return load_data(experiment.data, model_input_size=(32, 32), batch_size=batch_size)


def test_classes_are_kept_and_relabelled_in_the_given_order(patterns_dir):
    every = data_for(patterns_dir)
    data = data_for(patterns_dir, "data.classes=[square, circle]")
    assert data.class_names == ["square", "circle"] and data.num_classes == 2
    assert data.train_examples < every.train_examples / 4  # two classes of ten
    labels = np.concatenate([y.numpy().argmax(1) for _, y in data.eval.take(20)])
    assert set(labels) == {0, 1}
    # the same images, relabelled: the eval split's square images are class 0 here
    whole = np.concatenate([y.numpy().argmax(1) for _, y in every.eval])
    kept = whole[np.isin(whole, [every.class_names.index("square"), every.class_names.index("circle")])]
    ours = np.concatenate([y.numpy().argmax(1) for _, y in data.eval])
    np.testing.assert_array_equal(ours, (kept == every.class_names.index("circle")).astype(int))


def test_examples_per_class_takes_the_first_n_of_each_class_deterministically(patterns_dir):
    data = data_for(patterns_dir, "data.classes=[square, circle, cross]", "data.examples_per_class=4")
    assert data.train_examples == 12 and data.steps_per_epoch == 1
    again = data_for(patterns_dir, "data.classes=[square, circle, cross]", "data.examples_per_class=4")
    first = next(iter(data.train(None)))[0].numpy()
    np.testing.assert_array_equal(first, next(iter(again.train(None)))[0].numpy())
    assert data.eval_examples == data_for(patterns_dir, "data.classes=[square, circle, cross]").eval_examples


def test_channels_converts_the_images(patterns_dir):
    data = data_for(patterns_dir, "data.channels=3", "data.mean=[0.5]", "data.std=[0.25]")
    assert data.preprocessing.channels == 3
    images = next(iter(data.eval))[0].numpy()
    assert images.shape[-1] == 3 and np.array_equal(images[..., 0], images[..., 2])  # grey, repeated


def test_selection_errors_name_what_the_dataset_has(patterns_dir):
    with pytest.raises(ZooError, match="unknown class of zoo_patterns 'sqare'; did you mean 'square'"):
        data_for(patterns_dir, "data.classes=[sqare]")
    with pytest.raises(ZooError, match=r"data.examples_per_class: expected at most \d+ \(class 'square' has \d+"):
        data_for(patterns_dir, "data.classes=[square]", "data.examples_per_class=100000")


def test_a_run_on_chosen_classes_records_and_evaluates_them(patterns_dir, tmp_path):
    overrides = [*SHORT, "train.epochs=1", "train.steps_per_epoch=2", f"data.data_dir={patterns_dir}",
                 "data.classes=[circle, square, cross]", "data.examples_per_class=40"]
    result = run_here("train.py", "configs/experiments/default.yaml", "--workdir", str(tmp_path / "run"),
                      *[f"--set={s}" for s in overrides])
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["num_classes"] == 3
    evaluation = run_here("evaluate.py", str(tmp_path / "run"), "--json")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    result = json.loads(evaluation.stdout)["results"][0]
    assert list(result["per_class"]) == ["circle", "square", "cross"] and result["examples"] == 360
