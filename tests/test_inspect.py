"""`python -m zoo inspect` works for every shipped config, and the README's table is generated."""
import json

import pytest
from conftest import MODEL_CONFIGS, model_ids
from helpers import ROOT

from zoo.cli.commands import main
from zoo.models.analysis import models_table


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=model_ids())
def test_inspect_json_for_every_config(path, capsys):
    assert main(["inspect", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {"name", "type", "output_shape", "params", "macs", "receptive_field"} <= set(rows[0])
    assert rows[-1]["type"] == "classifier"


def test_inspect_table_has_totals(capsys):
    assert main(["inspect", "resnet20", "--input-shape", "64,64,3"]) == 0
    out = capsys.readouterr().out
    assert "input 64x64x3" in out and "total: 271,098 parameters (269,722 trainable)" in out


def test_readme_models_table_is_up_to_date():
    readme = (ROOT / "README.md").read_text()
    assert models_table() in readme, "run `make readme` to regenerate the table from the configs"


def test_readme_imagenet_weights_table_is_up_to_date():
    from zoo.models.analysis import imagenet_weights_table

    assert imagenet_weights_table() in (ROOT / "README.md").read_text(), "run `make readme` to regenerate the table"


def test_readme_presets_table_is_up_to_date():
    from zoo.models.presets import presets_table

    assert presets_table() in (ROOT / "README.md").read_text(), "run `make readme` to regenerate the table"
