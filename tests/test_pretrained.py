"""The keras.applications twins compute the same function once weights are transferred."""
import keras
import numpy as np
import pytest
from conftest import MODEL_CONFIGS

from zoo import build_model, load_model_config
from zoo.common.errors import ZooError
from zoo.models.pretrained import keras_application, transfer_weights

TWINS = [p.stem for p in MODEL_CONFIGS if load_model_config(p).keras_application]


def test_the_five_reference_twins_are_declared():
    assert sorted(TWINS) == ["resnet101", "resnet152", "resnet50", "vgg16", "vgg19"]


# ResNet-101 and ResNet-152 are named and copied as ResNet-50 is; at 12-16 s each on the Zen 3 they are
# big models, left to `make test-slow` (the `slow` marker).
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in ("resnet101", "resnet152")
                                  else name for name in TWINS])
def test_twin_outputs_agree_after_transfer(name):
    config = load_model_config(name)
    source = keras_application(config.keras_application)(weights=None)
    twin = build_model(config)
    copied = transfer_weights(source, twin)
    assert copied == len(source.weights) == len(twin.weights)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    # Compare the features before the classifier too: with random weights the softmax saturates. Both
    # outputs come from one eager call a model: `predict` traced a function per output, 3x the time (Intel Xeon AMX).
    expected = keras.Model(source.input, [source.output, source.layers[-2].output])(x, training=False)
    received = keras.Model(twin.input, [twin.output, twin.layers[-2].output])(x, training=False)
    for model_out, twin_out in zip(expected, received):
        model_out, twin_out = np.asarray(model_out), np.asarray(twin_out)
        assert np.all(np.isfinite(model_out)) and np.max(np.abs(model_out)) > 0
        assert np.max(np.abs(twin_out - model_out)) <= 1e-5 * np.max(np.abs(model_out))


def test_transfer_refuses_a_mismatched_model_before_copying_anything():
    source = build_model("resnet20")
    target = build_model("resnet20", num_classes=7)
    before = [w.copy() for w in target.get_weights()]
    with pytest.raises(ZooError, match="predictions"):
        transfer_weights(source, target)
    for old, new in zip(before, target.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_pretrained_without_network_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -3] name resolution")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(ZooError, match="cannot load ImageNet weights for ResNet50.*~/.keras/models"):
        build_model({"base": "resnet50", "pretrained": "imagenet"})
