"""The zoo as an installed package: configs found by name from anywhere, the `zoo` command, `.keras`
files loadable by plain Keras after `import zoo`, and the built wheel working outside the checkout."""
import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import keras
import pytest
from helpers import ROOT, assert_one_line_error, run_here

import zoo
from zoo.common.shipped import CONFIGS_DIR, FOLDERS, config_path, shipped_configs
from zoo.experiment import load_experiment
from zoo.models.builder import build_model
from zoo.models.config import load_model_config
from zoo.training.schedules import WarmupSchedule

KINDS = list(FOLDERS)


def test_the_checkouts_configs_folder_is_a_link_to_the_packages():
    assert (ROOT / "configs").is_symlink() and (ROOT / "configs").resolve() == CONFIGS_DIR
    assert CONFIGS_DIR.parent == Path(zoo.__file__).parent


@pytest.mark.parametrize("kind", KINDS)
def test_every_shipped_config_resolves_by_name_from_any_directory(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = shipped_configs(kind)
    names = [path.stem for path in paths]
    assert len(names) == len(set(names)), f"two shipped {kind} configs share a name: {sorted(names)}"
    assert len(paths) == sum(len(list((CONFIGS_DIR / folder).glob("*.yaml"))) for folder in FOLDERS[kind]) > 0
    for path in paths:
        assert config_path(path.stem, kind) == path
    assert config_path("sub/x.yaml", kind, relative_to=Path("/base")) == Path("/base/sub/x.yaml")
    assert config_path("x.yaml", kind) == Path("x.yaml")  # a file name is a path, from the current directory
    (tmp_path / paths[0].stem).write_text("")  # a user's file of a shipped config's name, given here: theirs
    assert config_path(paths[0].stem, kind) == Path(paths[0].stem)


def test_an_experiment_by_name_is_the_experiment_in_its_file(tmp_path, monkeypatch):
    from_file = load_experiment(CONFIGS_DIR / "experiments" / "mnist_lenet5.yaml", ["train.epochs=1"])
    monkeypatch.chdir(tmp_path)
    assert load_experiment("mnist_lenet5", ["train.epochs=1"]) == from_file
    assert load_model_config("resnet20") == load_model_config(CONFIGS_DIR / "models" / "resnet20.yaml")


@pytest.mark.parametrize("command, words", [
    (["train", "mnist_lenet"], ["unknown experiment 'mnist_lenet'", "did you mean 'mnist_lenet5'", "recipe",
                                "default"]),
    (["inspect", "resnet19"], ["unknown model 'resnet19'", "resnet18, resnet20"]),
])
def test_an_unknown_name_lists_what_the_package_has(command, words):
    assert_one_line_error(run_here("-m", "zoo", *command), *words)


def _zoo_objects() -> set[str]:
    return {name for name in keras.saving.get_custom_objects() if name.startswith("zoo>")}


def test_keras_loads_a_zoo_model_file_after_import_zoo_whichever_is_imported_first(tmp_path):
    for module in pkgutil.walk_packages(zoo.__path__, "zoo."):  # every registration the package holds
        if module.name == "zoo.__main__":
            continue
        try:
            __import__(module.name)
        except ModuleNotFoundError as error:  # zoo.models.torch_ops needs the torch extra, which CI lacks
            if error.name != "torch":
                raise
    every = _zoo_objects()
    assert {"zoo>FusedBatchNormalization", "zoo>ChannelZeroPad", "zoo>LocalResponseNormalization",
            "zoo>WarmupSchedule"} <= every
    # ResNet-20 holds the fused batch norm and option A's channel padding; its compiled optimizer the schedule
    model = build_model(load_model_config("resnet20"))
    model.compile(keras.optimizers.SGD(WarmupSchedule("cosine", 0.1, 100, 10)), "categorical_crossentropy")
    model.save(tmp_path / "model.keras")
    listed = "print(sorted(n for n in keras.saving.get_custom_objects() if n.startswith('zoo>')))"
    load = ("import numpy as np; m = keras.saving.load_model('model.keras', safe_mode=True); "
            "print(m.count_params(), m.optimizer.get_config()['learning_rate']['class_name'], "
            "float(np.asarray(m(np.zeros((1, 32, 32, 3)))).sum()))")
    # TensorFlow looks keras up while it imports: the registration must wait for keras's own import. The
    # file is loaded in that order, the one a registration could miss; keras imported first is the other.
    # Each order costs a fresh interpreter and TensorFlow's import (8 s on the Zen 3), so "import zoo, keras",
    # the second order's path without TensorFlow's lookup in it, is left out.
    orders = [("import keras, zoo", ""), ("import zoo, tensorflow, keras", load)]
    for imports, then in orders:
        result = subprocess.run([sys.executable, "-c", f"{imports}; {listed}; {then}"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{imports}: {result.stderr}"
        lines = result.stdout.splitlines()
        assert lines[-2 if then else -1] == str(sorted(every)), imports
    params, schedule, total = lines[-1].split()
    assert (int(params), schedule) == (model.count_params(), "WarmupSchedule")
    assert float(total) == pytest.approx(1.0, abs=1e-5)


# Only what an installed wheel can get wrong is checked here: the package's files (configs, every preset's
# card and weights, whole by their sha256) and its commands. test_presets.py builds every preset, and
# test_training.py and test_export.py run the trainer, evaluate.py and the exports, in the checkout.
# The fresh environment borrows the test environment's installed dependencies through a .pth line that
# names its site-packages (no download, seconds instead of minutes): such a line adds the folder without
# running the .pth files inside it, so the checkout's editable zoo stays invisible, and only what the wheel
# holds is importable as `zoo`. `pip check` confirms the wheel's declared dependencies are met.
API_SCRIPT = """
import sys
from importlib.metadata import entry_points
import keras, numpy as np
import zoo
from zoo.cli.commands import main  # what the `zoo` script runs: one TensorFlow import, not two
assert zoo.__file__.startswith(sys.prefix), zoo.__file__
print("script", entry_points(group="console_scripts")["zoo"].value)
print("trained", main(["train", "default", "--workdir", "run", *sys.argv[1:]]))
print("models", len(zoo.list_models()), "presets", len(zoo.list_presets()))
print("resnet18", zoo.create_model("resnet18").count_params())
for name in zoo.list_presets():
    print("weights", name, zoo.get_preset(name).weights_file().stat().st_size)
classifier = zoo.load("resnet20_cifar10")
probabilities = classifier.predict(np.zeros((2, 32, 32, 3), np.uint8))
print("preset", probabilities.shape, round(float(probabilities.sum()), 3))
model = keras.saving.load_model("run/model.keras")
print("keras", model.name, len(model.layers))
"""


def _built_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "zoo", source / "zoo", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                             "--no-index", str(source), "--wheel-dir", str(tmp_path / "dist")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "dist").glob("zoo-*.whl")
    return wheel


def _fresh_venv_with(wheel: Path, where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    Path(site_packages, "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    for pip_args in (["install", "--quiet", "--no-deps", "--no-index", str(wheel)], ["check"]):
        result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), *pip_args],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
    return where / "bin"


def test_the_wheel_works_from_another_directory(tmp_path, patterns_dir):
    wheel = _built_wheel(tmp_path)
    bin_dir = _fresh_venv_with(wheel, tmp_path / "venv")
    user = tmp_path / "elsewhere"
    user.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def zoo_command(*args: str, program: str = "zoo") -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_dir / program), *args], cwd=user, env=env, capture_output=True, text=True,
                              timeout=600)

    models = zoo_command("models")
    assert models.returncode == 0 and "| [resnet18](" in models.stdout and "`resnet20_cifar10`" in models.stdout
    assert_one_line_error(zoo_command("train", "defualt"), "unknown experiment 'defualt'", "did you mean 'default'")
    api = zoo_command("-c", API_SCRIPT, "--set", f"data.data_dir={patterns_dir}", "--set", "train.epochs=1",
                      "--set", "train.steps_per_epoch=3", "--set", "train.eval_steps=2",
                      "--set", "export.saved_model=false", program="python")
    assert api.returncode == 0, api.stdout[-3000:] + api.stderr[-3000:]
    assert (user / "run" / "model.keras").is_file()
    lines = api.stdout.splitlines()
    assert "script zoo.cli.commands:main" in lines and "trained 0" in lines
    assert f"models {len(zoo.list_models())} presets {len(zoo.list_presets())}" in lines
    assert "resnet18 11699112" in lines
    shipped = {name: zoo.get_preset(name).card["weights"]["bytes"] for name in zoo.list_presets()}
    assert {line for line in lines if line.startswith("weights ")} == {
        f"weights {name} {size}" for name, size in shipped.items()}
    assert "preset (2, 10) 2.0" in lines and any(line.startswith("keras ") for line in lines)
