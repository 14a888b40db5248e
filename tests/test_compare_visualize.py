"""`python -m zoo compare` and `python -m zoo visualize`: their files, their numbers and their errors.

One tiny LeNet-5 run on the embedded zoo_patterns dataset (3 steps) serves every test that needs
a run directory.
"""
import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, assert_one_line_error, needs_bfloat16_kernels, run_here

from zoo.common.errors import ZooError
from zoo.data.preprocess import Preprocessing
from zoo.experiment import load_experiment
from zoo.models.analysis import analyze
from zoo.models.builder import build_model
from zoo.models.config import load_model_config
from zoo.studies.compare import compare
from zoo.studies.visualize import block_outputs, filter_tiles, read_image, visualize
from zoo.training.trainer import train

CSV_COLUMNS = ["model", "source", "input", "params", "macs", "images_per_sec", "latency_ms", "saved_model_mb",
               "top1", "top5", "train_images_per_sec"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 ["train.epochs=1", "train.steps_per_epoch=3", "train.eval_steps=2"])
    train(experiment, workdir=workdir)
    return workdir


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 1000, path
    assert path.read_bytes()[:8] == PNG_MAGIC, path


def test_compare_config_and_run(run_dir, tmp_path, capsys):
    rows = compare(["lenet5", str(run_dir)], tmp_path)
    out = capsys.readouterr().out
    lenet5 = analyze(load_model_config("lenet5"))
    summary = json.loads((run_dir / "summary.json").read_text())

    table = read_csv(tmp_path / "compare.csv")
    assert list(table[0]) == CSV_COLUMNS and len(table) == 2
    config_row, run_row = table
    assert int(config_row["params"]) == lenet5.params and int(config_row["macs"]) == lenet5.macs
    [printed] = [line for line in out.splitlines() if line.split()[:2] == ["lenet5", "lenet5"]]
    assert f"{lenet5.params:,}" in printed.split()
    assert config_row["input"] == "28x28x1" and config_row["top1"] == ""
    assert run_row["input"] == "32x32x1" and int(run_row["params"]) == summary["params"]
    assert float(run_row["top1"]) == pytest.approx(summary["metrics"]["eval_accuracy"])
    assert float(run_row["top5"]) == pytest.approx(summary["metrics"]["eval_top5"])
    for row in table:
        assert float(row["images_per_sec"]) > 0 and float(row["latency_ms"]) > 0 and float(row["saved_model_mb"]) > 0
    assert rows[1].is_run and not rows[0].is_run

    markdown = (tmp_path / "compare.md").read_text().splitlines()
    assert markdown[0].startswith("| model | source | input | params | MACs | images/s (batch 64) |")
    assert markdown[0].endswith("| top-1 | top-5 | train images/s |") and len(markdown) == 4
    assert_png(tmp_path / "compare_accuracy_vs_macs.png")


def test_compare_configs_alone_make_no_plot(tmp_path, capsys):
    [row] = compare([str(ROOT / "configs/models/resnet20.yaml")], tmp_path, timing=False)
    assert row.params == analyze(load_model_config("resnet20")).params == 271_098
    assert "271,098" in capsys.readouterr().out
    assert row.images_per_sec is None and row.saved_model_mb > 1
    assert read_csv(tmp_path / "compare.csv")[0]["images_per_sec"] == ""
    assert not (tmp_path / "compare_accuracy_vs_macs.png").exists()


def test_compare_refuses_what_is_neither_config_nor_run(tmp_path):
    with pytest.raises(ZooError, match="a directory without them"):
        compare([str(tmp_path)], tmp_path / "out")
    with pytest.raises(ZooError, match="unknown model 'resnt20'; did you mean 'resnet20'"):
        compare(["resnt20"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = run_here("-m", "zoo", "compare", "lenet5", "no/such/config.yaml", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "expected a model config", "no/such/config.yaml", "no such file")


def test_visualize_evaluation_image(run_dir, tmp_path):
    written = visualize(run_dir, index=3, out_dir=tmp_path)
    names = {path.name for path in written}
    assert names == {"input.png", "first_conv_filters.png", "feature_maps_conv1.png", "feature_maps_conv2.png",
                     "training_curves.png"}
    for path in written:
        assert path.parent == tmp_path
        assert_png(path)


def test_visualize_image_file_defaults_to_run_dir(run_dir, tmp_path):
    image = tmp_path / "colour.png"  # RGB and another size: converted to the model's 32x32x1
    image.write_bytes(tf.io.encode_png(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8)).numpy())
    written = visualize(run_dir, image=image)
    assert {path.parent for path in written} == {run_dir / "visualize"}
    assert_png(run_dir / "visualize" / "input.png")


def test_visualize_errors(run_dir, tmp_path):
    with pytest.raises(ZooError, match=r"--index: expected 0 to \d+ .* received 100000"):
        visualize(run_dir, index=100_000, out_dir=tmp_path)
    with pytest.raises(ZooError, match="--image: expected an image file.*no such file"):
        visualize(run_dir, image=tmp_path / "missing.png", out_dir=tmp_path)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("not an image")
    with pytest.raises(ZooError, match="--image: expected a PNG, JPEG"):
        visualize(run_dir, image=not_an_image, out_dir=tmp_path)
    (tmp_path / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    result = run_here("-m", "zoo", "visualize", str(tmp_path))
    assert_one_line_error(result, "expected model.keras")


def test_feature_maps_are_block_outputs_and_filters_rgb_tiles():
    config = load_model_config("resnet20")
    model = build_model(config)
    blocks = [name for spec in config.layers for name, _ in spec.expand()]
    outputs = block_outputs(model, blocks)
    assert [layer.name for _, layer in outputs] == ["conv1_relu"] + [f"stage{s}_{i}_out" for s in (1, 2, 3)
                                                                     for i in (1, 2, 3)]
    tiles = filter_tiles(model.get_layer("conv1_conv"))
    assert len(tiles) == 16 and tiles[0].shape == (3, 3, 3)
    assert all(tile.min() == 0 and tile.max() == pytest.approx(1) for tile in tiles)


def test_grad_cam_of_a_run_and_of_a_preset(run_dir, tmp_path):
    written = visualize(run_dir, index=1, out_dir=tmp_path / "run", grad_cam=True, class_name="circle",
                        layer="conv1")
    assert tmp_path / "run" / "grad_cam.png" in written
    assert_png(tmp_path / "run" / "grad_cam.png")
    image = tmp_path / "digit.png"
    image.write_bytes(tf.io.encode_png(np.random.default_rng(0).integers(0, 255, (60, 60, 1), np.uint8)).numpy())
    written = visualize("lenet5_mnist", image=image, out_dir=tmp_path / "preset", grad_cam=True)
    assert {p.name for p in written} >= {"input.png", "grad_cam.png", "feature_maps_conv1.png"}
    assert "training_curves.png" not in {p.name for p in written}  # a preset has no metrics.csv


@pytest.mark.parametrize("shape", [(28, 28, 1), (60, 60, 1), (20, 35, 3), (28, 28, 4)],
                         ids=["the model's own size", "larger", "smaller colour", "own size RGBA"])
def test_grad_cam_of_an_image_of_any_size(shape, tmp_path):
    image = tmp_path / "digit.png"
    pixels = np.random.default_rng(0).integers(0, 255, shape, np.uint8)
    image.write_bytes(tf.io.encode_png(pixels).numpy())
    result = run_here("-m", "zoo", "visualize", "lenet5_mnist", "--image", str(image), "--grad-cam",
                      "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "out" / "grad_cam.png")
    shown = read_image(image, Preprocessing((28, 28), 1, (0.0,), (1.0,)))
    assert shown.shape == (28, 28, 1) and shown.dtype == np.uint8
    if shape == (28, 28, 1):
        np.testing.assert_array_equal(shown, pixels)  # the model's size: the image itself, unresized


def test_grad_cam_map_peaks_where_the_evidence_is():
    from zoo.studies.grad_cam import class_activation_map

    # One conv detecting bright pixels, pooled: the class score grows with the bright patch's area,
    # so the map must be highest where the patch is.
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros", activation="relu",
                               name="detector")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(conv)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.
                                                   Constant([[1.0, -1.0]]))(pooled))
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, 5:7, 1:3] = 1.0
    cam = class_activation_map(model, image, 0, model.get_layer("detector"))
    assert cam.shape == (8, 8) and cam.max() == 1.0
    assert cam[5:7, 1:3].min() == 1.0 and cam[:5].max() == 0.0


def test_grad_cam_errors(run_dir, tmp_path):
    with pytest.raises(ZooError, match="--class: unknown class 'circel'; did you mean 'circle'"):
        visualize(run_dir, out_dir=tmp_path, grad_cam=True, class_name="circel")
    with pytest.raises(ZooError, match="--layer: expected a layer with spatial feature maps"):
        visualize(run_dir, out_dir=tmp_path, grad_cam=True, layer="flatten")
    with pytest.raises(ZooError, match="--image: expected an image file to show lenet5_mnist"):
        visualize("lenet5_mnist", out_dir=tmp_path)


@needs_bfloat16_kernels
def test_grad_cam_of_a_mixed_precision_model():
    from zoo.studies.grad_cam import class_activation_map, last_spatial_layer

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("lenet5")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    image = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    cam = class_activation_map(model, image, 3, last_spatial_layer(model))
    assert cam.dtype == np.float32 and cam.ndim == 2 and np.isfinite(cam).all()
