"""zoo.models.torch_ops: every small shipped config and every block variant computes in PyTorch what it
computes in Keras, with the Keras model's weights copied into its twin. Skipped where torch is absent (it is
the bench extra's, which CI does not install)."""
import numpy as np
import pytest
from conftest import MODEL_CONFIGS
from helpers import tiny_config

from zoo.models.blocks import BLOCKS
from zoo.models.config import load_model_config
from zoo.models.create import create_model

torch = pytest.importorskip("torch", reason="torch is the bench extra's: pip install -e '.[bench]'")
from zoo.models.torch_ops import TorchTwin, copy_keras_weights  # noqa: E402  (needs torch)

# The configs small enough to build twice per test: the CIFAR-10 and MNIST ones (ImageNet-sized twins are
# checked against torchvision in test_torchvision_weights)
SMALL = [path.stem for path in MODEL_CONFIGS if load_model_config(path).input_shape[0] <= 32]


def randomised(model):
    """`model` with random biases, batch-norm shifts, scales and statistics (Keras starts biases and shifts
    at zero), so a weight copied to the wrong place or not at all changes the output."""
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if hasattr(layer, "moving_variance"):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
            layer.beta.assign(rng.normal(0, 0.2, layer.beta.shape))
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.2, layer.bias.shape))
    return model


def assert_twin_computes_the_same(config) -> None:
    model = randomised(create_model(config, verbose=False))
    twin = TorchTwin(load_model_config(config))
    copy_keras_weights(model, twin)
    images = np.random.default_rng(1).normal(size=(3, *model.input_shape[1:])).astype("float32")
    expected = np.asarray(model(images, training=False))
    with torch.no_grad():
        logits = twin(torch.from_numpy(images).permute(0, 3, 1, 2))
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected, rtol=1e-4, atol=1e-5)
    trainable = sum(p.numel() for p in twin.parameters())
    assert trainable == sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_the_small_configs_are_found():
    assert {"lenet5", "lenet5_cifar", "alexnet_cifar", "googlenet_cifar", "vgg11_bn_cifar", "resnet20",
            "resnet56"} <= set(SMALL)


@pytest.mark.parametrize("name", SMALL)
def test_small_shipped_config_twin_computes_what_keras_computes(name):
    assert_twin_computes_the_same(name)


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_every_registered_block_twin_computes_what_keras_computes(block):
    assert_twin_computes_the_same(tiny_config(block))


@pytest.mark.parametrize("block, args", [
    ("conv", {"kernel_size": [1, 3], "strides": [2, 1], "padding": "valid"}),
    ("conv", {"kernel_size": 3, "dilation_rate": 2}),
    ("conv", {"kernel_size": 5, "strides": 3, "padding": 2, "groups": 2, "norm": "batch"}),
    ("conv", {"kernel_size": 4, "strides": 3, "padding": "same", "use_bias": True, "norm": "batch"}),
    ("conv", {"kernel_size": 3, "strides": 2, "activation": "gelu"}),
    ("separable_conv", {"kernel_size": 3, "dilation_rate": 2, "norm": "batch"}),
    ("max_pool", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("max_pool", {"pool_size": 3, "strides": 2, "padding": "same", "input_shape": (16, 16, 4)}),  # uneven: 0, 1
    ("max_pool", {"pool_size": 2, "strides": 2, "padding": 1}),
    ("avg_pool", {"pool_size": 2, "strides": 2, "padding": 1}),
    ("avg_pool", {"pool_size": 3, "strides": 1, "padding": 1}),
    ("avg_pool", {"pool_size": 3, "strides": 1, "padding": "same"}),
    ("lrn", {"size": 3, "alpha": 0.01, "beta": 0.75, "k": 1.0}),
    ("residual_basic", {"strides": 2, "shortcut": "zero_pad", "filters": 8}),
    ("residual_basic", {"strides": 2, "shortcut": "zero_pad", "filters": 8, "input_shape": (16, 16, 4)}),
    ("residual_basic", {"strides": 2, "shortcut": "projection", "padding": 1}),
    ("residual_bottleneck", {"strides": 2, "stride_on": "3x3"}),
    ("inception", {"norm": "batch", "kernel_size_5x5": 3}),
])
def test_block_variant_twin_computes_what_keras_computes(block, args):
    # The block sees the random, signed input itself, so a max pool's padding value matters. TensorFlow's
    # "same" pads unevenly (one more at the bottom and right) where the padding it needs is odd: a stride-2
    # 3x3 on an even size, a 4x4 stride-3 convolution on 15.
    args = {"input_shape": (15, 15, 4), **args}
    assert_twin_computes_the_same(tiny_config(block, **args))


def test_an_uneven_same_average_pool_is_refused():
    from zoo.common.errors import ZooError

    with pytest.raises(ZooError, match="average pool"):
        TorchTwin(load_model_config(tiny_config("avg_pool", input_shape=(15, 15, 4), pool_size=2, strides=2,
                                                padding="same")))
