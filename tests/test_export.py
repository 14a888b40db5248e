"""Exports: every shipped architecture to LiteRT and ONNX, verified; refusals; a run's artifacts alone.

The architecture tests build each config at the smallest input its stack accepts, with three
classes, and scale its classifier so the probabilities are far from uniform (a random model's are
nearly equal, which would hide any difference). A run trained on the embedded zoo_patterns
dataset, with every format switched on, serves the command-line tests.
"""
import json
import shutil
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MODEL_CONFIGS
from helpers import (ROOT, SHORT, assert_one_line_error, distinct_when_cut_down, narrowed, needs_bfloat16_kernels,
                     run, run_here, tiny_config)

from zoo.common.errors import ConfigError, ZooError
from zoo.data.preprocess import Preprocessing
from zoo.deploy.artifact import Source
from zoo.deploy.export import export_artifact
from zoo.deploy.formats import FORMATS, open_artifact
from zoo.deploy.graph import SplitGroupedConv2D, batch_norm_folded, in_float32, inference_model
from zoo.deploy.verify import keras_probabilities
from zoo.experiment import ExportConfig, load_experiment
from zoo.models.builder import build_model, check_shapes
from zoo.models.config import load_model_config
from zoo.training.trainer import train

CLASSES = ["a", "b", "c"]


ARCHITECTURES = distinct_when_cut_down(MODEL_CONFIGS)


def smallest(config_path: Path, classes: int = len(CLASSES)):
    """The config at the smallest square input (from 16 pixels up) its stack accepts, narrowed and
    shallower: the same ops to export, without VGG's 100M-weight matrices, ResNet-50's 23M weights or
    ResNet-152's 50 bottlenecks."""
    config = load_model_config(config_path)
    layers = narrowed(config.raw["layers"])
    config = load_model_config({**config.raw, "layers": layers}, config.source)
    channels = config.input_shape[2]
    for size in range(16, config.input_shape[0] + 1):
        candidate = config.with_overrides((size, size, channels), classes)
        try:
            check_shapes(candidate)
            return candidate
        except ConfigError:
            continue
    return config.with_overrides(None, classes)


def sharpened(model: keras.Model, preprocessing: Preprocessing, images: np.ndarray) -> keras.Model:
    """Scales the classifier so the logits on `images` spread by about 3: probabilities far from uniform."""
    classifier = model.layers[-1]
    features = keras.Model(model.inputs, classifier.input)(preprocessing.normalize(tf.constant(images)))
    logits = np.asarray(features) @ classifier.kernel.numpy() + classifier.bias.numpy()
    scale = 3.0 / max(float(np.std(logits)), 1e-6)
    classifier.kernel.assign(classifier.kernel * scale)
    classifier.bias.assign(classifier.bias * scale)
    return model


def architecture_source(config_path: Path, images: int = 4) -> tuple[Source, np.ndarray]:
    config = smallest(config_path)
    height, width, channels = config.input_shape
    preprocessing = Preprocessing((height, width), channels, (0.5,), (0.25,))
    pixels = np.random.default_rng(0).integers(0, 256, (images, height, width, channels), dtype=np.uint8)
    model = sharpened(build_model(config), preprocessing, pixels)
    return Source(model, preprocessing, CLASSES, {"name": "zoo_patterns"}), pixels


def assert_exports(name: str, config_path: Path, tmp_path: Path) -> None:
    source, images = architecture_source(config_path)
    final = tmp_path / FORMATS[name].filename
    differences = export_artifact(name, source, final, images)
    artifact = open_artifact(final)  # the installed file, metadata and all
    expected = keras_probabilities(source.model, source.preprocessing, images)
    assert expected.max() - expected.min() > 0.05  # sharpened: a wrong op would show
    np.testing.assert_allclose(artifact.predict(images), expected, atol=1e-4)
    assert differences.max <= 1e-4
    assert artifact.format == name and artifact.metadata["class_names"] == CLASSES
    assert artifact.metadata["input"]["shape"] == [None, *source.preprocessing.image_size, images.shape[-1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]  # nothing staged is left


@pytest.mark.parametrize("path", ARCHITECTURES, ids=lambda path: path.stem)
def test_every_architecture_exports_to_litert(path, tmp_path):
    assert_exports("litert", path, tmp_path)


@pytest.mark.parametrize("path", ARCHITECTURES, ids=lambda path: path.stem)
def test_every_architecture_exports_to_onnx(path, tmp_path):
    assert_exports("onnx", path, tmp_path)


@needs_bfloat16_kernels
@pytest.mark.parametrize("name", ["litert", "onnx"])
def test_a_mixed_bfloat16_model_exports_as_its_float32_copy(name, tmp_path):
    # LiteRT and ONNX have no bfloat16 kernels: before, such a run (precision auto on a bf16 CPU) could not
    # export to either. The export is held to the float32 tolerance, against the float32 copy.
    config = smallest(ROOT / "configs/models/resnet20.yaml")
    preprocessing = Preprocessing(tuple(config.input_shape[:2]), config.input_shape[2], (0.5,), (0.25,))
    images = np.random.default_rng(0).integers(0, 256, (4, *config.input_shape), dtype=np.uint8)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = sharpened(build_model(config), preprocessing, images)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    float32 = in_float32(model)
    assert float32.layers[1].compute_dtype == "float32" and model.layers[1].compute_dtype == "bfloat16"
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), float32.get_weights()))
    differences = export_artifact(name, Source(model, preprocessing, CLASSES, {"name": "zoo_patterns"}),
                                  tmp_path / FORMATS[name].filename, images)
    assert differences.max <= 1e-4
    bf16_gap = np.abs(keras_probabilities(model, preprocessing, images)
                      - keras_probabilities(float32, preprocessing, images)).max()
    assert bf16_gap > differences.max  # what bfloat16 itself changes is more than what the export does


@pytest.mark.parametrize("settings", [dict(strides=2, padding="valid"), dict(dilation_rate=2, use_bias=False),
                                      dict(activation="relu", padding="same")])
def test_grouped_convolution_split_by_group_computes_the_same(settings):
    inputs = keras.Input((9, 9, 6))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, groups=2, **settings)(inputs))
    for variable in model.weights:  # a bias of zeros would hide a misplaced one
        variable.assign(np.random.default_rng(1).normal(size=variable.shape))
    split = inference_model(model)
    assert any(isinstance(layer, SplitGroupedConv2D) for layer in split.layers)
    assert {id(v) for v in split.weights} == {id(v) for v in model.weights}  # shared, not copied
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 6)).astype("float32")
    np.testing.assert_allclose(np.asarray(split(x)), np.asarray(model(x)), atol=1e-5)


@pytest.mark.parametrize("path", ARCHITECTURES, ids=lambda path: path.stem)
def test_batch_norm_folds_into_the_convolution_before_it(path):
    model = build_model(smallest(path))
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    rng = np.random.default_rng(0)
    for norm in norms:  # the statistics of a trained model: a fold that skipped one would show
        channels = norm.moving_mean.shape[0]
        norm.moving_mean.assign(rng.normal(size=channels))
        norm.moving_variance.assign(rng.uniform(0.2, 3.0, size=channels))
        norm.gamma.assign(rng.normal(size=channels))
        norm.beta.assign(rng.normal(size=channels))
    folded = batch_norm_folded(model)
    left = [layer.name for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert left == [] and (folded is model) == (norms == [])
    new = [layer for layer in folded.layers if not isinstance(layer, keras.layers.InputLayer)
           and layer is not model.get_layer(layer.name)]  # the rest are shared, not copied
    assert sorted(layer.name for layer in new) == sorted(norm.input._keras_history.operation.name for norm in norms)
    x = rng.normal(size=(2, *model.input_shape[1:])).astype("float32")
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(np.asarray(folded(x, training=False)), expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())


class AntialiasedResize(keras.layers.Layer):
    """Needs TensorFlow's ScaleAndTranslate op, which LiteRT has no builtin for."""

    def call(self, x):
        return tf.image.resize(x, (8, 8), antialias=True)

    def compute_output_shape(self, shape):
        return (shape[0], 8, 8, shape[3])


def classifier_after(layer: keras.layers.Layer, size: int) -> keras.Model:
    """`layer` on size x size grey images, then a softmax classifier of three classes."""
    inputs = keras.Input((size, size, 1))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(layer(inputs))))


def test_litert_refuses_a_model_that_needs_flex_ops_and_keeps_the_old_file(tmp_path):
    model = classifier_after(AntialiasedResize(), 16)
    preprocessing = Preprocessing((16, 16), 1, (0.0,), (1.0,))
    final = tmp_path / "model.tflite"
    final.write_bytes(b"the previous export")
    with pytest.raises(ZooError, match="ScaleAndTranslate.*nothing was written"):
        export_artifact("litert", Source(model, preprocessing, CLASSES), final, np.zeros((2, 16, 16, 1), np.uint8))
    assert final.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_lrn_exports_with_the_papers_formula(tmp_path):
    """A strong LRN (alpha 0.5) shows a wrong alpha or size mapping, which AlexNet's 1e-4 would not."""
    config = tiny_config("lrn", input_shape=(8, 8, 7), size=3, alpha=0.5, beta=0.75, k=1.0)
    preprocessing = Preprocessing((8, 8), 7, (0.5,), (0.25,))
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 7), dtype=np.uint8)
    model = sharpened(build_model(config), preprocessing, images)
    for name in ("litert", "onnx"):
        assert export_artifact(name, Source(model, preprocessing, CLASSES), tmp_path / name, images).max <= 1e-4


class NestedJit(keras.layers.Layer):
    """A nested jit-compiled function, as Keras runs a grouped convolution on TensorFlow."""

    def call(self, x):
        return tf.function(lambda y: 2.0 * y, jit_compile=True)(x)

    def compute_output_shape(self, shape):
        return shape


def test_onnx_refuses_what_tf2onnx_leaves_unconverted(tmp_path):
    model = classifier_after(NestedJit(), 4)
    final = tmp_path / "model.onnx"
    with pytest.raises(ZooError, match="PartitionedCall unconverted.*nothing was written"):
        export_artifact("onnx", Source(model, Preprocessing((4, 4), 1, (0.0,), (1.0,)), CLASSES), final,
                        np.zeros((2, 4, 4, 1), np.uint8))
    assert not list(tmp_path.iterdir())


def test_export_formats_are_the_export_sections_switches():
    assert list(FORMATS) == ExportConfig(litert=True, litert_int8=True, onnx=True).formats()


# ----------------------------------------------------------------------------- one run, every format

EVERY_FORMAT = ["export.litert=true", "export.litert_int8=true", "export.onnx=true", "export.calibration_images=20"]


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, patterns_dir):
    workdir = tmp_path_factory.mktemp("run")
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml",
                                 [*SHORT, *EVERY_FORMAT, f"data.data_dir={patterns_dir}"])
    return workdir, train(experiment, workdir)


def test_a_run_writes_and_records_every_format(exported_run):
    workdir, summary = exported_run
    names = {"saved_model": "saved_model", "keras": "model.keras", "litert": "model.tflite",
             "litert_int8": "model_int8.tflite", "onnx": "model.onnx"}
    assert summary["artifacts"] == {name: str(workdir / filename) for name, filename in names.items()}
    assert not list(workdir.glob(".*tmp*"))
    int8, float_ = (workdir / "model_int8.tflite").stat().st_size, (workdir / "model.tflite").stat().st_size
    assert int8 < 0.4 * float_  # 8-bit weights


def test_saved_model_stores_each_weight_once_and_serves_any_size(exported_run):
    workdir, _ = exported_run
    model = keras.saving.load_model(workdir / "model.keras")
    weights = sum(np.asarray(w).nbytes for w in model.weights)
    variables = sum(f.stat().st_size for f in (workdir / "saved_model" / "variables").iterdir())
    assert weights <= variables <= 1.1 * weights, (variables, weights)
    serving = tf.saved_model.load(str(workdir / "saved_model")).signatures["serving_default"]
    for shape in [(1, 32, 32, 1), (3, 50, 20, 1)]:
        assert serving(images=tf.zeros(shape, tf.uint8))["probabilities"].shape == (shape[0], 10)


def test_evaluate_a_run_compares_every_artifact(exported_run):
    workdir, _ = exported_run
    result = run_here("evaluate.py", str(workdir), "--json")
    assert result.returncode == 0, result.stderr
    results = {r["format"]: r for r in json.loads(result.stdout)["results"]}
    assert list(results) == list(FORMATS)
    for r in results.values():
        assert r["examples"] == 1200 and len(r["per_class"]) == 10 and r["images_per_sec"] > 0
        latency = r["latency"]  # one image, as a server taking requests one at a time sees it
        assert 0 < latency["median_ms"] <= latency["p90_ms"] and latency["calls"] >= 10
        assert (Path(r["out_dir"]) / "confusion_matrix.csv").exists()
    for name in ("keras", "litert", "onnx"):  # float exports: the same answers, so the same top-1
        assert abs(results[name]["accuracy"] - results["saved_model"]["accuracy"]) <= 0.001
    assert abs(results["litert_int8"]["accuracy"] - results["saved_model"]["accuracy"]) <= 0.05
    table = run_here("evaluate.py", str(workdir), "--format", "litert_int8", "--format", "litert")
    assert table.returncode == 0, table.stderr
    assert "litert_int8" in table.stdout and "vs first" in table.stdout and "batch-1 ms" in table.stdout
    assert "batch-1 latency" in table.stdout and "(p90 " in table.stdout


@pytest.mark.parametrize("name", ["saved_model", "model.keras", "model.tflite", "model_int8.tflite", "model.onnx"])
def test_an_artifact_alone_names_its_dataset(exported_run, tmp_path, name):
    workdir, _ = exported_run
    alone = tmp_path / name
    (shutil.copytree if (workdir / name).is_dir() else shutil.copy)(workdir / name, alone)
    result = run_here("evaluate.py", str(alone), "--json", "--split", "test[:64]")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout)["results"][0]
    assert evaluated["dataset"] == "zoo_patterns" and evaluated["examples"] == 64
    assert Path(evaluated["out_dir"]).parent.parent == tmp_path


def test_reexport_one_format_prints_its_verification(exported_run):
    workdir, _ = exported_run
    before = (workdir / "model.onnx").stat().st_mtime_ns
    result = run("-m", "zoo", "export", str(workdir), "--format", "onnx")
    assert result.returncode == 0, result.stderr
    assert "onnx:" in result.stdout and "max probability difference" in result.stdout
    assert (workdir / "model.onnx").stat().st_mtime_ns > before


def test_unknown_format_is_one_line(exported_run):
    workdir, _ = exported_run
    assert_one_line_error(run("-m", "zoo", "export", str(workdir), "--format", "tflite"),
                          "unknown format 'tflite'", "litert")
    assert_one_line_error(run("evaluate.py", str(workdir), "--format", "onx"), "unknown format 'onx'", "onnx")


def test_missing_artifact_is_one_line(tmp_path):
    assert_one_line_error(run("evaluate.py", str(tmp_path / "model.onnx")), "expected a run directory",
                          "does not exist")


def test_missing_runtime_names_the_extra(exported_run, monkeypatch):
    workdir, _ = exported_run
    for package in ("onnxruntime", "tf2onnx", "ai_edge_litert"):  # as if never installed: importing them fails
        for module in [name for name in sys.modules if name == package or name.startswith(package + ".")] or [package]:
            monkeypatch.setitem(sys.modules, module, None)
    before = (workdir / "model.onnx").read_bytes()
    assert_one_line_error(run_here("-m", "zoo", "export", str(workdir), "--format", "onnx"),
                          "pip install -e '.[export]'", "tf2onnx")
    assert (workdir / "model.onnx").read_bytes() == before
    assert_one_line_error(run_here("evaluate.py", str(workdir / "model.tflite")),
                          "pip install -e '.[export]'", "ai-edge-litert")


def test_keras_file_carries_metadata_and_still_loads(exported_run):
    workdir, _ = exported_run
    with zipfile.ZipFile(workdir / "model.keras") as archive:
        metadata = json.loads(archive.read("zoo.json"))
    assert metadata["data"]["name"] == "zoo_patterns" and metadata["input"]["dtype"] == "float32"
    assert keras.saving.load_model(workdir / "model.keras").output_shape == (None, 10)


def test_zoo_load_predicts_the_same_for_every_format_and_any_image_size(exported_run):
    import zoo

    workdir, summary = exported_run
    images = [np.random.default_rng(i).integers(0, 256, (40 + i, 50, 3), np.uint8) for i in range(3)]  # RGB, other sizes
    reference = None
    for name, path in summary["artifacts"].items():
        classifier = zoo.load(path)
        assert classifier.class_names[0] == "horizontal_line" and classifier.preprocessing.channels == 1
        probabilities = classifier.predict(images)
        assert probabilities.shape == (3, 10)
        reference = probabilities if reference is None else reference
        np.testing.assert_allclose(probabilities, reference, atol=0.1 if name == "litert_int8" else 1e-4)
    assert zoo.load(workdir).format == "saved_model"  # a run directory stands for its SavedModel


def _lambda_keras(path):
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(path)


BAD_ARTIFACTS = {
    "empty.keras": lambda path, good: path.write_bytes(b""),
    "truncated.keras": lambda path, good: path.write_bytes((good / "model.keras").read_bytes()[:4000]),
    "random.tflite": lambda path, good: path.write_bytes(np.random.default_rng(0).bytes(2000)),
    "random.onnx": lambda path, good: path.write_bytes(np.random.default_rng(1).bytes(2000)),
    "saved_model": lambda path, good: (shutil.copytree(good / "saved_model", path),
                                       shutil.rmtree(path / "variables")),
}


@pytest.mark.parametrize("name", BAD_ARTIFACTS)
def test_every_loader_answers_a_bad_artifact_in_one_line(exported_run, tmp_path, name, capsys):
    import zoo
    from zoo.cli.commands import main

    path = tmp_path / name
    BAD_ARTIFACTS[name](path, exported_run[0])
    assert_one_line_error(run_here("evaluate.py", str(path)), str(path))
    with pytest.raises(SystemExit) as stopped:  # python -m zoo predict, in this process
        main(["predict", str(path), str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and len(error.splitlines()) == 1 and str(path) in error, error
    with pytest.raises(ZooError, match=str(path)):
        zoo.load(path)


def test_unsafe_keras_file_is_refused_not_run(tmp_path):
    import zoo

    _lambda_keras(tmp_path / "lambda.keras")
    with pytest.raises(ZooError, match="Python code .* safe mode refuses"):
        zoo.create_model("lenet5", weights=tmp_path / "lambda.keras")
    assert_one_line_error(run_here("evaluate.py", str(tmp_path / "lambda.keras")), "lambda.keras")


def test_a_saved_model_of_torchvision_style_weights_resizes_and_crops_inside(tmp_path):
    """A model whose weights were evaluated on the centre crop of a resized image (torchvision's) is served
    that way: any image in, its short side resized and its centre cropped inside the SavedModel."""
    preprocessing = Preprocessing((16, 16), 3, (0.5,) * 3, (0.25,) * 3, resize=20)
    model = build_model(tiny_config("conv", input_shape=(16, 16, 3)))
    source = Source(model, preprocessing, ["a", "b", "c"], {"name": "zoo_patterns"})
    export_artifact("saved_model", source, tmp_path / "saved_model",
                    np.zeros((2, 16, 16, 3), np.uint8))
    artifact = open_artifact(tmp_path / "saved_model")
    assert artifact.preprocessing == preprocessing  # the resize travels in the metadata
    image = np.random.default_rng(0).integers(0, 256, (1, 30, 40, 3), np.uint8)
    serving = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    served = serving(images=tf.constant(image))["probabilities"].numpy()
    resized = tf.cast(tf.round(tf.image.resize(image, (20, 26), antialias=True)), tf.uint8)  # int(20 * 40 / 30)
    expected = keras_probabilities(model, preprocessing, resized[:, 2:18, 5:21].numpy())  # the centre 16x16
    np.testing.assert_allclose(served, expected, atol=1e-5)
