"""The package's layering: the import-linter contracts hold, and they cover every subpackage; and
the repository holds no large file but the presets' weights."""
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, run

from zoo.models.presets import PRESET_DIR, WEIGHTS_SUFFIX

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


def test_no_tracked_file_over_2_mib_but_a_presets_weights():
    # Data and build output live outside the repository (DEVELOPERS.md); trained preset weights are
    # the one exception, bounded by their storage's limit in test_presets.
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout, so there is no list of tracked files")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    large = {path for path in tracked.decode().split("\0")
             if path and (ROOT / path).is_file() and (ROOT / path).stat().st_size > 2 * 1024 * 1024}
    weights = {str((PRESET_DIR / path.name).relative_to(ROOT)) for path in PRESET_DIR.glob(f"*{WEIGHTS_SUFFIX}")}
    assert large <= weights, f"tracked files over 2 MiB that are not preset weights: {sorted(large - weights)}"
