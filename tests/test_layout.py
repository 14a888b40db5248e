"""The package's layering: the import-linter contracts hold, and they cover every subpackage."""
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, run

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONTRACTS)} kept, 0 broken" in result.stdout, result.stdout


def test_every_part_of_the_package_is_in_a_layer():
    layers = next(c["layers"] for c in CONTRACTS if c["type"] == "layers")
    parts = {f"zoo.{path.stem if path.is_file() else path.name}" for path in (ROOT / "zoo").iterdir()
             if (path.suffix == ".py" or (path / "__init__.py").exists()) and not path.name.startswith("__")}
    assert parts == set(layers), "a module outside the layering contract: add it to [tool.importlinter] layers"


def test_importing_zoo_does_not_import_tensorflow():
    result = run("-c", "import sys, zoo; print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr
