"""torchvision's ImageNet weights in the zoo's configs: every config with a torchvision twin computes what
torchvision's model computes from the same state_dict, and every way to get it wrong is one line."""
import hashlib

import keras
import numpy as np
import pytest
from helpers import torchvision_models

from zoo.models.config import load_model_config
from zoo.models.create import WeightsError, create_model
from zoo.models.torchvision_weights import TorchvisionWeightsError, twin_configs

TWINS = twin_configs()


def test_the_twins_are_declared():
    assert TWINS == ["alexnet_torchvision", "googlenet_torchvision", "resnet18", "resnet34", "vgg11", "vgg13", "vgg16",
                     "vgg19"]


def torch_or_skip():
    """torch, or a skip saying why (it is the bench extra's, which `make test` does not install)."""
    torchvision_models()
    import torch

    return torch


def torchvision_state(name: str, tmp_path, file_name: str | None = None):
    torchvision_models()  # or a skip saying why
    from reference_torchvision import random_twin

    return random_twin(name, tmp_path, file_name)


def logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    from reference_torchvision import logits as zoo_logits

    return zoo_logits(model, x)


# The VGGs are big models (each a state dict of over 500 MB, saved and converted: 15-20 s each on the Zen 3),
# left to `make test-slow` (the `slow` marker); `make bench` holds all eight twins to the same bound too.
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name.startswith("vgg") else name
                                  for name in TWINS])
def test_a_converted_state_dict_computes_what_torchvision_computes(name, tmp_path):
    torch = torch_or_skip()

    network, path = torchvision_state(name, tmp_path)
    model = create_model(name, weights=path, verbose=False)
    assert model.weights_report.fresh == {} and len(model.weights_report.loaded) == len(
        [layer for layer in model.layers if layer.weights])
    twin = load_model_config(name).torchvision
    assert model.preprocessing["mean"] == list(twin.mean) and model.preprocessing["resize"] == 256
    x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype("float32")
    with torch.no_grad():
        expected = network(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    received = logits(model, x)
    assert np.abs(expected).max() > 1e-3 and expected.std() > 1e-4  # logits that differ from one another
    assert np.abs(received - expected).max() <= 1e-4 * np.abs(expected).max()
    np.testing.assert_allclose(np.asarray(model(x, training=False)), torch.softmax(torch.from_numpy(expected), -1),
                               atol=1e-5)


def test_a_fresh_head_keeps_the_converted_backbone(tmp_path):
    _, path = torchvision_state("resnet18", tmp_path)
    model = create_model("resnet18", weights=path, num_classes=5, verbose=False)
    assert model.output_shape == (None, 5) and list(model.weights_report.fresh) == ["predictions"]


def test_weights_torchvision_offline_names_the_url_and_where_to_put_the_file(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(TorchvisionWeightsError) as raised:
        create_model("resnet18", weights="torchvision", verbose=False)
    message = str(raised.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message and "\n" not in message
    assert "weights='PATH/resnet18-f37072fd.pth'" in message and "~/.keras/zoo_weights/" in message


def test_the_twins_own_file_that_does_not_match_the_hash_in_its_name_is_refused(tmp_path):
    _, path = torchvision_state("resnet18", tmp_path, "resnet18-f37072fd.pth")  # torchvision's name, other bytes
    assert not hashlib.sha256(path.read_bytes()).hexdigest().startswith("f37072fd")
    with pytest.raises(TorchvisionWeightsError, match="does not match the sha256 prefix f37072fd"):
        create_model("resnet18", weights=path, verbose=False)
    own = path.rename(tmp_path / "resnet18-20240101.pth")  # a user's own file, dated: taken as it is
    assert create_model("resnet18", weights=own, verbose=False).weights_report.fresh == {}


def test_a_training_checkpoint_is_one_line_naming_its_keys(tmp_path):
    torch = torch_or_skip()

    network, _ = torchvision_state("resnet18", tmp_path)
    torch.save({"epoch": 3, "model": network.state_dict()}, tmp_path / "checkpoint.pth")
    with pytest.raises(TorchvisionWeightsError, match="received a dict with keys epoch, model; a training checkpoint"):
        create_model("resnet18", weights=tmp_path / "checkpoint.pth", verbose=False)


def test_googlenet_weights_expect_the_scale_torchvision_converts_their_input_to(tmp_path):
    torch = torch_or_skip()

    _, path = torchvision_state("googlenet_torchvision", tmp_path)
    network = torchvision_models().googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=False)
    network.load_state_dict({k: v for k, v in torch.load(path).items() if not k.startswith("aux")})
    network.eval()
    model = create_model("googlenet_torchvision", weights=path, verbose=False)
    pixels = np.random.default_rng(0).uniform(0, 1, (2, 224, 224, 3)).astype("float32")
    imagenet = (pixels - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]  # what torchvision's GoogLeNet is fed
    with torch.no_grad():
        expected = network(torch.from_numpy(imagenet.astype("float32")).permute(0, 3, 1, 2)).numpy()
    mean, std = np.array(model.preprocessing["mean"]), np.array(model.preprocessing["std"])
    received = logits(model, ((pixels - mean) / std).astype("float32"))
    assert np.abs(received - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("name, weights_of, message", [
    ("resnet20", "resnet18", "resnet20 has no torchvision twin; the configs that have one: alexnet_torchvision, "
                             "googlenet_torchvision, resnet18"),
    ("resnet18", "resnet34", "torchvision's layer1.2.conv1 has no block in this config"),
    ("vgg11", "vgg13", "torchvision's model has 10 Conv2D layers, vgg11 has 8"),
])
def test_weights_of_another_architecture_are_one_line(name, weights_of, message, tmp_path):
    _, path = torchvision_state(weights_of, tmp_path)
    with pytest.raises(TorchvisionWeightsError, match=message):
        create_model(name, weights=path, verbose=False)


def test_reading_a_pth_file_without_torch_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "resnet18.pth"
    path.write_bytes(b"not read")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(TorchvisionWeightsError, match=r"needs PyTorch, which is not installed: pip install torch "):
        create_model("resnet18", weights=path, verbose=False)


def test_a_damaged_pth_file_is_one_line(tmp_path):
    torch_or_skip()
    path = tmp_path / "resnet18.pth"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(TorchvisionWeightsError, match="cannot read .* as a PyTorch state_dict"):
        create_model("resnet18", weights=path, verbose=False)


def test_a_pth_file_for_a_model_of_no_name_is_refused(tmp_path):
    from zoo.models.create import open_weights

    with pytest.raises(WeightsError, match="holds weights only; name the model"):
        (tmp_path / "x.pth").write_bytes(b"")
        open_weights(tmp_path / "x.pth")


def test_zoo_load_with_torchvision_weights_classifies_into_imagenet_classes(tmp_path):
    import zoo

    _, path = torchvision_state("resnet18", tmp_path)
    classifier = zoo.load("resnet18", weights=str(path))
    assert len(classifier.class_names) == 1000 and classifier.class_names[:2] == ["tench", "goldfish"]
    assert classifier.preprocessing.resize == 256 and classifier.preprocessing.image_size == (224, 224)
    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)
    assert classifier.prepare(image).shape == (224, 224, 3)  # short side to 256, the centre 224 crop
    probabilities = classifier.predict([image])
    assert probabilities.shape == (1, 1000) and abs(probabilities.sum() - 1) < 1e-4


def test_zoo_load_with_weights_that_carry_no_classes_is_one_line(tmp_path):
    import zoo
    from zoo.common.errors import ZooError

    path = tmp_path / "resnet20.weights.h5"
    create_model("resnet20", verbose=False).save_weights(path)
    with pytest.raises(ZooError, match="carry no preprocessing or class names"):
        zoo.load("resnet20", weights=str(path))


def test_the_evaluation_resize_keeps_torchvisions_share_at_another_input_size():
    from zoo.models.torchvision_weights import preprocessing

    config = load_model_config("resnet18")
    assert preprocessing(config)["resize"] == 256
    assert preprocessing(config.with_overrides((320, 320, 3)))["resize"] == 366  # 320 * 256 / 224
