"""Presets, `publish`, and `zoo.create_model`: weights by layer name, new heads, headless models, features.

The shipped presets are looped over (a new preset is tested without new test code); the publish
flow runs on a short run of the embedded zoo_patterns dataset, published into a temporary folder.
"""
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from conftest import MODEL_CONFIGS
from helpers import ROOT, SHORT, assert_one_line_error, distinct_when_cut_down, run, run_here

import zoo
import zoo.models.presets as presets
from zoo.common.errors import ZooError
from zoo.experiment import load_experiment
from zoo.models.analysis import analyze
from zoo.models.config import load_model_config
from zoo.models.create import HEAD_TYPES
from zoo.training.publish import _round_keras_weights, publish
from zoo.training.trainer import train


@pytest.mark.parametrize("name", presets.list_presets())
def test_every_shipped_preset_loads_offline_and_matches_its_card(name):
    preset = zoo.get_preset(name)
    card = preset.card
    path = preset.weights_file()  # checks the sha256
    assert path.stat().st_size == card["weights"]["bytes"] <= presets.MAX_SHIPPED_BYTES[card["weights"]["storage"]]
    assert stored_dtypes(path) == {card["weights"]["storage"]}
    model = zoo.create_model(card["model"]["name"], weights=name)
    assert model.output_shape[-1] == len(card["class_names"]) == len(model.class_names)
    assert list(model.input_shape[1:]) == [*card["preprocessing"]["image_size"], card["preprocessing"]["channels"]]
    assert analyze(preset.model_config).params == card["params"] == model.count_params()
    assert not model.weights_report.fresh and 0 < card["metrics"]["top5"] and card["metrics"]["top1"] <= 1
    assert card["training"]["command"] and card["training"]["commit"]


def stored_dtypes(path: Path) -> set[str]:
    """The dtypes of a weights file's floating-point arrays."""
    import h5py

    found = set()

    def note(_: str, item) -> None:
        if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
            found.add(str(item.dtype))

    with h5py.File(path, "r") as weights:
        weights.visititems(note)
    return found


@pytest.fixture(scope="module")
def published(tmp_path_factory, patterns_dir):
    """A short run published as the preset `tiny_patterns` into a folder of its own."""
    root = tmp_path_factory.mktemp("published")
    experiment = load_experiment(ROOT / "configs/experiments/default.yaml", [*SHORT, f"data.data_dir={patterns_dir}"])
    train(experiment, root / "run")
    card = publish(root / "run", "tiny_patterns", directory=root / "presets")
    return root, card


@pytest.fixture
def preset_dir(published, monkeypatch):
    monkeypatch.setattr(presets, "PRESET_DIR", published[0] / "presets")
    return published[0] / "presets"


def test_publish_writes_a_card_with_measured_metrics_and_the_weights_hash(published):
    root, card_path = published
    card = yaml.safe_load(card_path.read_text())
    assert set(presets.CARD_KEYS) <= set(card)
    weights = root / "presets" / card["weights"]["file"]
    assert card["weights"]["sha256"] == presets.file_sha256(weights) and card["weights"]["bytes"] == weights.stat().st_size
    assert card["class_names"][:2] == ["horizontal_line", "vertical_line"] and len(card["class_names"]) == 10
    assert card["preprocessing"] == {"image_size": [32, 32], "channels": 1, "mean": [0.5], "std": [0.25]}
    assert 0 < card["metrics"]["top1"] <= card["metrics"]["top5"] <= 1 and "1,200 images" in card["metrics"]["measured"]
    assert card["training"]["experiment"] == "default" and card["training"]["epochs"] == 2
    assert "started_from" not in card["training"]  # trained from random weights
    assert not list((root / "run").glob("evaluation-*"))  # publish evaluated in a scratch folder, not in the run
    assert not [p for p in (root / "presets").iterdir() if p.name.startswith(".")]  # nothing half-written


def test_float16_storage_halves_the_file_and_measures_what_it_costs(published, tmp_path, monkeypatch):
    root, float32_card = published
    card_path = publish(root / "run", "tiny_patterns", directory=tmp_path, storage="float16")
    card, reference = yaml.safe_load(card_path.read_text()), yaml.safe_load(float32_card.read_text())
    weights = tmp_path / card["weights"]["file"]
    assert stored_dtypes(weights) == {"float16"} and card["weights"]["storage"] == "float16"
    assert card["weights"]["bytes"] == weights.stat().st_size < 0.6 * reference["weights"]["bytes"]
    assert card["metrics"]["float32_top1"] == reference["metrics"]["top1"]  # the run's own figure, beside
    assert abs(card["metrics"]["top1"] - card["metrics"]["float32_top1"]) <= 0.02
    assert "as stored (float16)" in card["metrics"]["measured"]
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    model = zoo.create_model("lenet5", weights="tiny_patterns")  # Keras casts the float16 arrays on loading
    trained = keras.saving.load_model(root / "run" / "model.keras", compile=False)
    assert all(w.dtype == "float32" for w in model.weights)
    for loaded, original in zip(model.weights, trained.weights):
        np.testing.assert_array_equal(loaded.numpy(), original.numpy().astype(np.float16).astype(np.float32))
    rounded = tmp_path / "rounded.keras"  # the copy the card's top-1 is measured on
    _round_keras_weights(root / "run" / "model.keras", rounded)
    for copy, original in zip(keras.saving.load_model(rounded, compile=False).weights, trained.weights):
        np.testing.assert_array_equal(copy.numpy(), original.numpy().astype(np.float16).astype(np.float32))
    with pytest.raises(ZooError, match="--storage: expected one of float32, float16, received 'int8'"):
        publish(root / "run", "tiny_patterns", directory=tmp_path, storage="int8")


def test_a_weights_file_over_the_package_limit_is_one_line_and_leaves_nothing(published, tmp_path, monkeypatch):
    root, _ = published
    monkeypatch.setitem(presets.MAX_SHIPPED_BYTES, "float32", 100_000)
    with pytest.raises(ZooError, match=r"^tiny_patterns\.weights\.h5 would be 0\.\d\d MB, over the 0\.1 MB a float32 "
                                       r"preset .* may be; host it .* or store it as float16 \(--storage float16\)$"):
        publish(root / "run", "tiny_patterns", directory=tmp_path)
    assert not list(tmp_path.iterdir())


def test_create_model_from_a_preset_predicts_as_the_run_did(published, preset_dir):
    root, _ = published
    model = zoo.create_model("lenet5", weights="tiny_patterns")
    trained = keras.saving.load_model(root / "run" / "model.keras", compile=False)
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-6)
    assert model.preprocessing["mean"] == [0.5] and model.class_names[0] == "horizontal_line"
    assert model.weights_report.loaded and not model.weights_report.fresh
    from_run = zoo.create_model("lenet5", weights=root / "run")
    np.testing.assert_allclose(from_run.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-6)


def test_a_new_head_starts_fresh_and_everything_else_is_loaded(published, preset_dir):
    reference = zoo.create_model("lenet5", weights="tiny_patterns")
    model = zoo.create_model("lenet5", weights="tiny_patterns", num_classes=5)
    assert model.output_shape == (None, 5) and model.class_names is None
    assert model.weights_report.fresh == {"predictions": "5 classes; the weights have 10"}
    for layer in model.layers:
        if layer.weights and layer.name != "predictions":
            for a, b in zip(layer.get_weights(), reference.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)


def test_headless_model_with_pooling_and_features(published, preset_dir):
    backbone = zoo.create_model("lenet5", weights="tiny_patterns", include_top=False, pooling="avg")
    assert backbone.output_shape == (None, 16)  # conv2's 16 channels, pooled
    assert not [layer for layer in backbone.layers if layer.name == "predictions"]
    features = zoo.create_model("resnet20", features=["stage1", "stage2_2", "stage3"])
    assert [tuple(o.shape) for o in features.outputs] == [(None, 32, 32, 16), (None, 16, 16, 32), (None, 8, 8, 64)]


# One of each set of configs alike once cut down (helpers.distinct_when_cut_down; today they differ only in
# depth: ResNet-20 for ResNet-32 to 110, ...), at full size: ResNet-152 alone took 4.4 s of `make test` on
# the Zen 3, and its blocks are named as ResNet-50's are.
@pytest.mark.parametrize("path", distinct_when_cut_down(MODEL_CONFIGS), ids=lambda path: path.stem)
def test_feature_outputs_have_the_shapes_inspect_computes(path):
    config = load_model_config(path)
    body = [spec.name for spec in config.layers if spec.type not in HEAD_TYPES]
    model = zoo.create_model(path, features=body)
    rows = {row.layer: row for row in analyze(config).rows}  # the last row of each config layer wins
    assert [list(o.shape[1:]) for o in model.outputs] == [rows[name].output_shape for name in body]


def test_bad_weights_and_arguments_are_one_line(published, preset_dir, tmp_path):
    with pytest.raises(ZooError, match="unknown preset 'tiny_patern'; did you mean 'tiny_patterns'"):
        zoo.create_model("lenet5", weights="tiny_patern")
    with pytest.raises(ZooError, match="layer 'conv1_conv' has shapes"):
        zoo.create_model("resnet20", weights="tiny_patterns")
    with pytest.raises(ZooError, match="pooling: expected one of avg, max"):
        zoo.create_model("lenet5", include_top=False, pooling="mean")
    with pytest.raises(ZooError, match="unknown block of lenet5 'conv9'"):
        zoo.create_model("lenet5", features=["conv9"])
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    with pytest.raises(ZooError, match="cannot load .*empty.keras: not a complete .keras archive"):
        zoo.create_model("lenet5", weights=empty)


def test_a_damaged_weights_file_fails_its_hash_in_one_line(published, tmp_path, monkeypatch):
    copy = tmp_path / "presets"
    copy.mkdir()
    for path in (published[0] / "presets").iterdir():
        copy.joinpath(path.name).write_bytes(path.read_bytes())
    weights = copy / "tiny_patterns.weights.h5"
    weights.write_bytes(weights.read_bytes()[:-100])
    monkeypatch.setattr(presets, "PRESET_DIR", copy)
    with pytest.raises(ZooError, match="tiny_patterns.weights.h5 has sha256 .* expected"):
        zoo.create_model("lenet5", weights="tiny_patterns")


def test_presets_and_publish_commands(published, tmp_path):
    listing = run("-m", "zoo", "presets")
    assert listing.returncode == 0 and listing.stdout.startswith("| preset |"), listing.stderr
    assert_one_line_error(run("-m", "zoo", "presets", "resnet20_cifar"), "unknown preset 'resnet20_cifar'")
    assert_one_line_error(run_here("-m", "zoo", "publish", str(tmp_path), "--name", "x"),
                          "expected a finished run with summary.json", "missing: summary.json")
    assert_one_line_error(run_here("-m", "zoo", "publish", str(published[0] / "run"), "--name", "2x"),
                          "--name: expected letters")
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    for name in ("summary.json", "config.yaml"):
        (incomplete / name).write_text((published[0] / "run" / name).read_text())
    keras.Model(*(lambda x: (x, keras.layers.Dense(2)(x)))(keras.Input((3,)))).save(incomplete / "model.keras")
    assert_one_line_error(run_here("-m", "zoo", "publish", str(incomplete), "--name", "x", "--out",
                                   str(tmp_path / "out")), "missing model.keras metadata: data")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    """Keras's get_file caches into a temporary folder, not ~/.keras."""
    (tmp_path / "keras_home").mkdir()  # get_file falls back to /tmp/.keras for a folder it cannot write
    monkeypatch.setattr("keras.src.backend.config.keras_home", lambda: str(tmp_path / "keras_home"))
    return tmp_path / "keras_home"


def test_weights_file_and_url_with_its_hash(published, preset_dir, keras_cache):
    reference = zoo.create_model("lenet5", weights="tiny_patterns")
    weights = preset_dir / "tiny_patterns.weights.h5"
    x = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    from_file = zoo.create_model("lenet5", weights=weights, input_shape=(32, 32, 1))
    np.testing.assert_allclose(from_file.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-6)
    url = f"file://{weights}#sha256={presets.file_sha256(weights)}"
    from_url = zoo.create_model("lenet5", weights=url, input_shape=(32, 32, 1), num_classes=4)
    assert from_url.weights_report.fresh == {"predictions": "4 classes; the weights have 10"}
    assert list(keras_cache.rglob("*tiny_patterns.weights.h5"))  # fetched once into the cache
    with pytest.raises(ZooError, match="cannot fetch"):
        zoo.create_model("lenet5", weights=f"file://{weights}#sha256={'0' * 64}")
    with pytest.raises(ZooError, match="#sha256=<64 hex digits>"):
        zoo.create_model("lenet5", weights=f"file://{weights}")


def test_a_preset_may_name_a_url_instead_of_a_shipped_file(published, tmp_path, monkeypatch, keras_cache):
    hosted = tmp_path / "hosted.weights.h5"
    hosted.write_bytes((published[0] / "presets" / "tiny_patterns.weights.h5").read_bytes())
    card = yaml.safe_load(published[1].read_text())
    card["weights"] = {**card["weights"], "file": None, "url": f"file://{hosted}"}
    (tmp_path / "catalogue").mkdir()
    (tmp_path / "catalogue" / "tiny_patterns.yaml").write_text(yaml.safe_dump(card))
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path / "catalogue")
    model = zoo.create_model("lenet5", weights="tiny_patterns")
    assert model.output_shape == (None, 10) and not model.weights_report.fresh


def test_other_input_channels_adapt_the_first_convolution():
    grey = zoo.create_model("lenet5", weights="lenet5_mnist", verbose=False)
    colour = zoo.create_model("lenet5", weights="lenet5_mnist", input_shape=(28, 28, 3), verbose=False)
    assert colour.weights_report.adapted == {"conv1_conv": "1 -> 3 input channels (repeated and rescaled)"}
    assert colour.preprocessing["channels"] == 3 and len(colour.preprocessing["mean"]) == 3
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(colour.predict(np.repeat(x, 3, axis=-1), verbose=0), grey.predict(x, verbose=0),
                               atol=1e-5)  # a grey image in three channels gives the same answer
    one = zoo.create_model("resnet20", weights="resnet20_cifar10", input_shape=(32, 32, 1), num_classes=5,
                           verbose=False)
    assert one.weights_report.adapted == {"conv1_conv": "3 -> 1 input channels (summed)"}
    assert set(one.weights_report.fresh) == {"predictions"}
    kernel = zoo.create_model("resnet20", weights="resnet20_cifar10", verbose=False).get_layer("conv1_conv").kernel
    np.testing.assert_allclose(one.get_layer("conv1_conv").kernel.numpy(), kernel.numpy().sum(2, keepdims=True),
                               atol=1e-6)


def test_an_experiment_starts_from_weights_and_takes_their_normalisation(published, preset_dir, patterns_dir,
                                                                          tmp_path):
    overrides = [*SHORT, "train.epochs=1", f"data.data_dir={patterns_dir}", "model.weights=tiny_patterns",
                 "data.mean=[0.0]", "data.std=[1.0]", "export.saved_model=false"]
    summary = train(load_experiment(ROOT / "configs/experiments/default.yaml", overrides), tmp_path / "run")
    record = summary["weights"]
    assert record["source"] == "tiny_patterns" and record["sha256"] and len(record["loaded"]) == 5
    assert record["fresh"] == {} and record["normalization"].startswith("data.mean/std are the weights' ([0.5]")
    metadata = zoo.models.saving.read_metadata(tmp_path / "run" / "model.keras")
    assert metadata["mean"] == [0.5] and metadata["std"] == [0.25]  # the artifacts normalise as trained
    catalogue = tmp_path / "presets"  # the parent and the preset trained further from it
    catalogue.mkdir()
    for path in preset_dir.glob("tiny_patterns.*"):
        shutil.copy(path, catalogue)
    card = yaml.safe_load(publish(tmp_path / "run", "tiny_patterns_further", directory=catalogue).read_text())
    parent = presets.get_preset("tiny_patterns", catalogue).card
    assert card["training"]["started_from"] == {"source": "tiny_patterns", "sha256": parent["weights"]["sha256"]}
    assert presets.training_lineage("tiny_patterns_further", catalogue) == [parent["training"], card["training"]]
    assert "| default, 1 epochs from tiny_patterns |" in presets.presets_table(catalogue)
    parent_card = catalogue / "tiny_patterns.yaml"  # the parent replaced by other weights: the lineage ends
    parent_card.write_text(parent_card.read_text().replace(parent["weights"]["sha256"], "0" * 64))
    assert presets.training_lineage("tiny_patterns_further", catalogue) == [card["training"]]
    assert "| default, 1 epochs from weights not shipped |" in presets.presets_table(catalogue)


def test_a_source_that_does_not_fit_stops_before_training_and_writes_nothing(published, tmp_path, patterns_dir):
    catalogue = tmp_path / "catalogue"
    shutil.copytree(published[0] / "presets", catalogue)
    args = ["train.py", "configs/experiments/default.yaml", "--workdir", str(tmp_path / "run"),
            *[f"--set={s}" for s in SHORT], f"--set=data.data_dir={patterns_dir}"]
    assert_one_line_error(run_here(*args, "--set", "model.weights=lenet5_mnst"), "unknown preset 'lenet5_mnst'",
                          "did you mean 'lenet5_mnist'")
    result = run_here(*args, "--set", "model.base=resnet20", "--set", f"model.weights={published[0] / 'run'}")
    assert_one_line_error(result, "layer 'conv1_conv' has shapes")
    assert not (tmp_path / "run" / "config.yaml").exists()  # a corrected rerun is not "another configuration"


def test_a_head_trained_on_other_classes_starts_fresh_even_with_the_same_count(published, preset_dir,
                                                                               patterns_dir, tmp_path):
    overrides = [*SHORT, "train.epochs=1", f"data.data_dir={patterns_dir}", "model.weights=tiny_patterns",
                 "data.classes=[circle, square, cross, x_cross, horizontal_line, vertical_line, diagonal_up, "
                 "diagonal_down, horizontal_edge, vertical_edge]",  # all ten, in another order
                 "export.saved_model=false", "export.keras=false"]
    summary = train(load_experiment(ROOT / "configs/experiments/default.yaml", overrides), tmp_path / "run")
    assert list(summary["weights"]["fresh"]) == ["predictions"]
    assert "are not the weights'" in summary["weights"]["fresh"]["predictions"]
