"""A bad model config is one clear line (file, key path, expected, received), exit status 2, no code run."""
import textwrap

import pytest
from helpers import assert_one_line_error, run

from zoo.common.errors import ConfigError
from zoo.models.builder import check_shapes
from zoo.models.config import load_model_config

GOOD_LAYERS = """
layers:
  - {type: conv, name: conv1, filters: 4, kernel_size: 3}
  - {type: flatten}
  - {type: classifier}
"""
HEADER = "name: m\ninput_shape: [8, 8, 1]\nnum_classes: 2\n"


def write(tmp_path, text, name="model.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, fragments", [
    (HEADER + "layers: [{type: conv, filters: 4\n", ["invalid YAML", "line"]),
    (HEADER + "layers:\n  - {type: convv, filters: 4}\n", ["layers[0].type", "unknown block type 'convv'",
                                                           "did you mean 'conv'?"]),
    (HEADER + "layers:\n  - {type: conv, filters: 4, kernal_size: 3}\n", ["layers[0].kernal_size",
                                                                         "did you mean 'kernel_size'?"]),
    (HEADER + "layers:\n  - {type: conv, filters: 4, kernel_size: 0}\n", ["layers[0].kernel_size",
                                                                         "expected a positive integer", "received 0"]),
    (HEADER + "layers:\n  - {type: conv, filters: four}\n", ["layers[0].filters", "received 'four'"]),
    (HEADER + "layers:\n  - {type: conv, filters: 4, padding: samee}\n", ["layers[0].padding",
                                                                         "did you mean 'same'?"]),
    (HEADER + "layers:\n  - {type: dropout, rate: 1.5}\n", ["layers[0].rate", "received 1.5"]),
    (HEADER + "layers:\n  - {type: conv, kernel_size: 3}\n", ["layers[0]", "missing required key 'filters'"]),
    ("name: m\nnum_classes: 2\n" + GOOD_LAYERS, ["input_shape", "missing required key"]),
    (HEADER + "nmae: x\n" + GOOD_LAYERS, ["nmae", "did you mean 'name'?"]),
    (HEADER + "defaults: {kernel_sise: 3}\n" + GOOD_LAYERS, ["defaults.kernel_sise", "did you mean 'kernel_size'?"]),
    (HEADER + "name: again\n" + GOOD_LAYERS, ["duplicate key 'name'"]),
    (HEADER + "layers:\n  - {type: conv, name: a, filters: 4}\n  - {type: conv, name: a, filters: 4}\n",
     ["layers[1]", "'a' is used twice"]),
    (HEADER + "layers:\n  - {type: conv, filters: 4, kernel_size: 5, padding: valid}\n  - {type: conv, filters: 4, "
     "kernel_size: 5, padding: valid}\n", ["layers[1]", "height would be 0", "input 4, kernel 5"]),
    (HEADER + "layers:\n  - {type: conv, filters: 4, strides: 2, dilation_rate: 2}\n", ["layers[0]", "dilation_rate"]),
    (HEADER + "layers:\n  - {type: dense, units: 4}\n", ["layers[0]", "needs a flat input"]),
    ("base: missing.yaml\n", ["base", "not found"]),
    ("base: lenet55\n", ["unknown model 'lenet55'", "did you mean 'lenet5'?"]),
])
def test_bad_config_is_one_clear_error(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        check_shapes(load_model_config(path))
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_circular_base_is_named(tmp_path):
    write(tmp_path, "base: b.yaml\nname: a\n", "a.yaml")
    write(tmp_path, "base: a.yaml\nname: b\n", "b.yaml")
    with pytest.raises(ConfigError, match=r"circular base: a.yaml -> b.yaml -> a.yaml"):
        load_model_config(tmp_path / "a.yaml")


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, f"!!python/object/apply:os.system ['touch {marker}']\n")
    result = run("-m", "zoo", "inspect", str(path))
    assert_one_line_error(result, str(path), "is not allowed")
    assert not marker.exists()


def test_inspect_cli_reports_a_typo_with_exit_status_2(tmp_path):
    path = write(tmp_path, HEADER + "layers:\n  - {type: conv, filters: 4, kernal_size: 3}\n")
    assert_one_line_error(run("-m", "zoo", "inspect", str(path)), "layers[0].kernal_size", "did you mean")


def test_inspect_cli_rejects_a_bad_input_shape_argument():
    result = run("-m", "zoo", "inspect", "lenet5", "--input-shape", "28,28")
    assert result.returncode == 2 and "expected H,W,C" in result.stderr and "Traceback" not in result.stderr


def test_layer_patch_naming_an_unknown_layer(tmp_path):
    path = write(tmp_path, "base: lenet5\nlayers: {conv3: {kernel_size: 3}}\n")
    with pytest.raises(ConfigError, match=r"layers.conv3: unknown layer 'conv3'; did you mean 'conv2'"):
        load_model_config(path)
