"""`python -m zoo predict` with the shipped lenet5_mnist preset on images of every mode, size and format."""
import csv
import json

import numpy as np
import pytest
from helpers import assert_one_line_error, run, run_here
from PIL import Image

import zoo
from zoo.deploy.classifier import decode_file

MODES = {  # file name -> how PIL writes it
    "rgb.png": lambda a: Image.fromarray(a),
    "gray.png": lambda a: Image.fromarray(a).convert("L"),
    "rgba.png": lambda a: Image.fromarray(a).convert("RGBA"),
    "palette.png": lambda a: Image.fromarray(a).convert("P"),
    "sixteen_bit.png": lambda a: Image.fromarray(a[..., 0].astype(np.uint16) * 257),
    "photo.jpg": lambda a: Image.fromarray(a),
    "cmyk.jpg": lambda a: Image.fromarray(a).convert("CMYK"),
    "animation.gif": lambda a: Image.fromarray(a).convert("P"),
    "bitmap.bmp": lambda a: Image.fromarray(a),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    pixels = np.random.default_rng(0).integers(0, 256, (37, 45, 3), np.uint8)
    (folder / "nested").mkdir()
    for name, make in MODES.items():
        make(pixels).save(folder / ("nested" if name.endswith(".bmp") else "") / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "cut.png").write_bytes((folder / "rgb.png").read_bytes()[:100])
    return folder


@pytest.mark.parametrize("name", MODES)
def test_every_mode_decodes_to_the_models_channels(images, name):
    path = next(images.rglob(name))
    for channels in (1, 3):
        assert decode_file(path, channels).shape == (37, 45, channels)


def test_predict_classifies_a_folder_and_names_each_unreadable_file(images, tmp_path):
    result = run_here("-m", "zoo", "predict", "lenet5_mnist", str(images), "--top", "3", "--csv",
                      str(tmp_path / "p.csv"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(MODES) and all(len(line.split()) == 7 for line in lines)  # path, 3 x (class, p)
    assert "nested/bitmap.bmp" in result.stdout  # folders are walked recursively
    assert "unreadable: " + str(images / "cut.png") in result.stderr
    assert "unreadable: " + str(images / "notes.txt") in result.stderr
    assert f"{len(MODES)} image(s) classified with lenet5_mnist, 2 unreadable; " in result.stderr
    assert "images/s from file to answer" in result.stderr and "batch-1 latency" in result.stderr
    assert "Traceback" not in result.stderr
    with open(tmp_path / "p.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "class1", "probability1", "class2", "probability2", "class3", "probability3"]
    assert len(rows) == len(MODES) + 1


def test_predict_json_matches_the_python_api(images):
    result = run_here("-m", "zoo", "predict", "lenet5_mnist", str(images / "gray.png"), "--json", "--top", "10")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    top = report["predictions"][0]["top"]
    speed = report["speed"]
    assert speed["images_per_sec"] > 0 and 0 < speed["latency"]["median_ms"] <= speed["latency"]["p90_ms"]
    classifier = zoo.load("lenet5_mnist")
    probabilities = classifier.predict([decode_file(images / "gray.png", 1)])[0]
    assert {entry["class"]: entry["probability"] for entry in top} == pytest.approx(
        dict(zip(classifier.class_names, probabilities.tolist())), abs=1e-5)


def test_predict_takes_a_model_config_with_weights(images):
    result = run_here("-m", "zoo", "predict", "lenet5", str(images / "gray.png"), "--weights", "lenet5_mnist",
                      "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["source"] == "lenet5 with lenet5_mnist weights" and len(report["predictions"][0]["top"]) == 5


def test_predict_errors(images, tmp_path):
    assert_one_line_error(run("-m", "zoo", "predict", "lenet5_mnst", str(images)), "unknown preset 'lenet5_mnst'",
                          "did you mean 'lenet5_mnist'")
    assert_one_line_error(run("-m", "zoo", "predict", "lenet5_mnist", str(images), "--top", "0"), "--top")
    assert_one_line_error(run("-m", "zoo", "predict", "lenet_5", str(images), "--weights", "torchvision"),
                          "unknown model 'lenet_5'", "did you mean 'lenet5'")
    weights = tmp_path / "lenet5.weights.h5"  # weights alone: no classes or preprocessing to predict with
    zoo.create_model("lenet5", verbose=False).save_weights(weights)
    assert_one_line_error(run_here("-m", "zoo", "predict", "lenet5", str(images), "--weights", str(weights)),
                          "carry no preprocessing or class names")
    result = run_here("-m", "zoo", "predict", "lenet5_mnist", str(images / "cut.png"))
    assert result.returncode == 2 and "0 image(s) classified" in result.stderr and "Traceback" not in result.stderr
