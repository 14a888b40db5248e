"""Every shipped model config and every registered block: analytic numbers equal Keras's, counts equal the papers'.

The tests loop over configs/models/*.yaml and over the block registry, so a new config or a new
block is tested without new test code.
"""
import keras
import numpy as np
import pytest
from conftest import MODEL_CONFIGS, model_ids
from helpers import distinct_when_cut_down, keras_macs, needs_bfloat16_kernels, tiny_config

from zoo import build_model, load_model_config
from zoo.models.analysis import analyze
from zoo.models.blocks import BLOCKS
from zoo.models.builder import trace
from zoo.models.keras_ops import KerasOps

# (count_params(), trainable parameters) from the references; None where the reference gives only one.
REFERENCE_COUNTS = {
    "lenet5": (61_706, None),
    "alexnet": (60_965_224, None),
    "alexnet_torchvision": (61_100_840, None),  # torchvision.models.alexnet(): sum of its parameters
    "vgg11": (132_863_336, None),
    "vgg13": (133_047_848, None),
    "vgg16": (138_357_544, None),
    "vgg19": (143_667_240, None),
    "googlenet": (6_998_552, None),
    "googlenet_torchvision": (None, 6_624_904),  # torchvision.models.googlenet(aux_logits=False)'s parameters
    "resnet18": (None, 11_689_512),
    "resnet34": (None, 21_797_672),
    "resnet50": (25_636_712, None),
    "resnet101": (44_707_176, None),
    "resnet152": (60_419_944, None),
    "resnet20": (None, 269_722),
    "resnet32": (None, 464_154),
    "resnet44": (None, 658_586),
    "resnet56": (None, 853_018),
    "resnet110": (None, 1_727_962),
    # The CIFAR-10 configs of issue 38. LeNet-5 at 32x32x3: the commonly cited 62,006.
    "lenet5_cifar": (62_006, None),
    # By hand: convolutions 3,600 + 153,600 + 221,184 + 331,776 + 221,184, batch-norm scales and shifts
    # 1,376, dense 1,049,088 + 262,656 + 5,130.
    "alexnet_cifar": (None, 2_249_594),
    # kuangliu/pytorch-cifar's VGG11 and VGG16 (9,231,114 and 14,728,266) without their convolution biases
    # (2,752 and 4,224), with two 512-unit hidden layers (2 x 262,656).
    "vgg11_bn_cifar": (None, 9_753_674),
    "vgg16_bn_cifar": (None, 15_249_354),
    # By hand: stem 2,784; inception3a 41,200, 3b 97,664, 4a 94,512, 4b 112,776, 4c 128,024, 4d 151,872,
    # 4e 217,856, 5a 261,632, 5b 361,968 (each convolution's weights and batch-norm scales and shifts);
    # classifier 5,130.
    "googlenet_cifar": (None, 1_475_418),
}


def assert_analysis_matches_keras(config) -> None:
    """Block by block: output shape, count_params() and MACs from the analytic pass equal Keras's."""
    analysis = analyze(config)
    ops = KerasOps()
    done = 0
    names = []
    for block, row in zip(trace(config, ops, keras.Input(config.input_shape)), analysis.rows):
        layers, done = ops.layers[done:], len(ops.layers)  # the layers this block created
        names.append(block.name)
        assert block.name == row.name
        assert list(block.output.shape[1:]) == row.output_shape, block.name
        assert sum(layer.count_params() for layer in layers) == row.params, block.name
        assert sum(keras_macs(layer) for layer in layers) == row.macs, block.name
    assert names == [r.name for r in analysis.rows]


# One of each set of configs alike once cut down (helpers.distinct_when_cut_down; today they differ only
# in depth), at full size: ResNet-101, 110 and 152 took 10 s of make test on the Zen 3. Every config's
# parameter totals are checked against its reference counts below; MACs against the papers' for four.
@pytest.mark.parametrize("path", distinct_when_cut_down(MODEL_CONFIGS), ids=lambda path: path.stem)
def test_shipped_config_analysis_equals_keras(path):
    assert_analysis_matches_keras(load_model_config(path))


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=model_ids())
def test_shipped_config_counts_match_reference(path):
    assert path.stem in REFERENCE_COUNTS, f"add {path.stem}'s reference parameter count to REFERENCE_COUNTS"
    total, trainable = REFERENCE_COUNTS[path.stem]
    analysis = analyze(load_model_config(path))
    if total is not None:
        assert analysis.params == total
    if trainable is not None:
        assert analysis.trainable_params == trainable


@pytest.mark.parametrize("name, reference_macs, tolerance", [
    ("vgg16", 15.5e9, 0.01),      # Simonyan & Zisserman; fvcore/ptflops give 15.47 G
    ("resnet18", 1.8e9, 0.02),    # He et al. Table 1
    ("googlenet", 1.5e9, 0.06),   # Szegedy et al.: "1.5 billion multiply-adds"; true 5x5 branches give 1.58 G
    ("resnet50", 3.8e9, 0.02),    # He et al. Table 1 (3.8 x 10^9 FLOPs, i.e. multiply-adds)
])
def test_macs_match_papers(name, reference_macs, tolerance):
    assert analyze(load_model_config(name)).macs == pytest.approx(reference_macs, rel=tolerance)


@pytest.mark.parametrize("name, block, receptive_field", [
    ("vgg16", "block5_3", 196),     # the well-known receptive fields of VGG-16 conv5_3 and pool5
    ("vgg16", "block5_pool", 212),
    ("alexnet", "conv5", 163),
    ("alexnet", "pool5", 195),
])
def test_receptive_fields_match_known_values(name, block, receptive_field):
    assert analyze(load_model_config(name)).row(block).receptive_field == [receptive_field] * 2


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_every_registered_block_matches_keras(block):
    assert_analysis_matches_keras(load_model_config(tiny_config(block)))


@pytest.mark.parametrize("block, args", [
    ("conv", {"kernel_size": [1, 3], "strides": [2, 1], "padding": "valid"}),
    ("conv", {"kernel_size": 3, "dilation_rate": 2, "padding": "valid"}),
    ("conv", {"kernel_size": 5, "strides": 3, "padding": 2, "groups": 2, "norm": "batch"}),
    ("conv", {"kernel_size": 4, "strides": 3, "padding": "same", "use_bias": True, "norm": "batch"}),
    ("separable_conv", {"kernel_size": 3, "dilation_rate": 2, "norm": "batch"}),
    ("max_pool", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("avg_pool", {"pool_size": 3, "strides": 1, "padding": 1}),
    ("residual_basic", {"strides": 2, "shortcut": "zero_pad", "filters": 8}),
    ("residual_basic", {"strides": 2, "shortcut": "projection", "use_bias": True}),
    ("residual_bottleneck", {"strides": 2, "stride_on": "3x3"}),
    ("residual_bottleneck", {"strides": 2, "shortcut": "zero_pad", "expansion": 2}),
    ("inception", {"norm": "batch"}),
])
def test_block_variants_match_keras(block, args):
    assert_analysis_matches_keras(load_model_config(tiny_config(block, **args)))


def test_repeat_names_blocks_and_strides_only_the_first():
    config = load_model_config("resnet20")
    rows = analyze(config).rows
    stage2 = [r for r in rows if r.layer == "stage2"]
    assert [r.name for r in stage2] == ["stage2_1", "stage2_2", "stage2_3"]
    assert [r.jump for r in stage2] == [[2, 2]] * 3  # only the first repeat strides


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "googlenet"])
def test_model_saves_to_keras_file_and_loads_with_identical_outputs(name, tmp_path):
    model = build_model(name)
    x = np.random.default_rng(0).uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), restored.predict(x, verbose=0))


def test_input_shape_and_class_count_can_be_overridden():
    model = build_model("resnet20", input_shape=(64, 48, 1), num_classes=7)
    assert model.input_shape == (None, 64, 48, 1)
    assert model.output_shape == (None, 7)


def test_build_model_accepts_a_mapping_with_a_base():
    model = build_model({"base": "lenet5", "name": "lenet5_k3", "layers": {"conv1": {"kernel_size": 3}}})
    assert model.name == "lenet5_k3"
    assert model.get_layer("conv1_conv").kernel.shape == (3, 3, 1, 6)


@pytest.mark.parametrize("precision", ["float32", pytest.param("mixed_bfloat16", marks=needs_bfloat16_kernels)])
def test_fused_batch_norm_trains_as_the_stock_layer(precision):
    """Same outputs, gradients and moving statistics in training; inference is the stock code itself."""
    import tensorflow as tf

    from zoo.models.layers import FusedBatchNormalization

    keras.mixed_precision.set_global_policy(precision)
    try:
        stock, fused = (cls(epsilon=1e-5, momentum=0.9) for cls in (keras.layers.BatchNormalization,
                                                                     FusedBatchNormalization))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(3.0, 2.0, (8, 5, 5, 6)), "float32")
    weights = tf.constant(rng.normal(size=x.shape), "float32")  # a loss whose gradient is not zero
    results = []
    for layer in (stock, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 6))
        layer.beta.assign(np.linspace(-1.0, 1.0, 6))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, "float32") * weights)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance, layer(x, training=False)])
    tolerance = 2e-2 if precision == "mixed_bfloat16" else 1e-5
    traced = tf.function(lambda: fused(x, training=True)).get_concrete_function().graph
    assert "FusedBatchNormV3" in {op.type for op in traced.get_operations()}  # the fast path, not the fallback
    assert results[1][0].dtype == results[0][0].dtype
    for expected, got in zip(*results):
        np.testing.assert_allclose(np.asarray(got, "float32"), np.asarray(expected, "float32"),
                                   rtol=tolerance, atol=tolerance)
