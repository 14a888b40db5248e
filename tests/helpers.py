"""One-line helpers for tests: tiny configs, shipped models cut down, Keras-side counts, and running
commands."""
from __future__ import annotations

import contextlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.common.cpu import ISA_CAP_VARIABLE, this_cpu
from zoo.common.schema import REQUIRED
from zoo.models.blocks import BLOCKS
from zoo.models.config import load_model_config

ROOT = Path(__file__).resolve().parent.parent
# --set overrides for a run of a few seconds (the trainer tests' default run, the export tests' run)
SHORT = ["train.epochs=2", "train.steps_per_epoch=6", "train.eval_steps=3", "train.batch_size=32"]
# every key of the training recipes on (zoo.data.augment, train.ema_momentum, ...), for the trainer's paths
RECIPE = ["train.ema_momentum=0.9", "train.eval_tta=flip", "train.optimizer.decay_norm_and_bias=false",
          "train.optimizer.weight_decay=0.01", "data.augment.mixup_alpha=0.2", "data.augment.cutmix_alpha=1.0",
          "data.augment.rand_augment={num_ops: 2, magnitude: 9}", "data.augment.random_erasing=0.25",
          "data.augment.random_crop_padding=2", "data.augment.horizontal_flip=true"]


# Under ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU (how benchmarks/README.md measures an AVX2-only CPU's
# kernels) bfloat16 cannot run at all: TensorFlow sends it to oneDNN, whose capped kernels have none.
needs_bfloat16_kernels = pytest.mark.skipif(
    this_cpu().avx512_capped, reason=f"{ISA_CAP_VARIABLE}={this_cpu().isa_cap} leaves oneDNN no bfloat16 "
    "kernels on this AVX-512 CPU, and TensorFlow sends it bfloat16 all the same")


def torchvision_models():
    """torchvision.models (benchmarks/reference_torchvision.py says how it loads beside the CPU torch), or a
    skip saying why: torch and torchvision are the bench extra's, which `make test` does not install."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import reference_torchvision

    try:
        return reference_torchvision.models()
    except ImportError as error:
        pytest.skip(f"{error} (torch and torchvision are the bench extra: pip install -e '.[bench]')")


# Cut-down models: every op of a shipped architecture at a fraction of its weights and layers, for the
# tests whose time goes with the model's size (the exports, the feature extractors).
MAX_DENSE_UNITS = 128
# Every block's channel counts divided by the largest of WIDTH_DIVISORS that divides them all and keeps
# each at MIN_CHANNELS or more: the ratios between them, an option-A shortcut's zero channels and
# AlexNet's groups all stay, and no layer gets so narrow that its ReLUs can all die (LeNet-5's second
# convolution at 2 channels once gave every image the same output). The converters' time goes with the
# weights: an eighth of the width took ResNet-50's ONNX export from 14.5 to 1.7 s (Intel Xeon AMX).
CHANNEL_PARAMS = ("filters", "reduced_filters", "filters_1x1", "filters_3x3_reduce", "filters_3x3",
                  "filters_5x5_reduce", "filters_5x5", "pool_proj")
WIDTH_DIVISORS = (8, 4, 2)
MIN_CHANNELS = 8
# And every stage cut to MAX_REPEAT blocks: its first (with the stride and the projection or zero-padded
# shortcut) and one identity block after it are every op the stage has. So is a run of layers alike but
# for their names and widths cut to its first MAX_REPEAT: GoogLeNet's inception4c to 4e go, and an
# ImageNet ResNet's last stage (strided as the one before it). The converters' time also goes with the
# layers: ResNet-110's 54 blocks took 14.5 s to LiteRT; GoogLeNet's nine inception modules 10-11 s (Zen 3).
MAX_REPEAT = 2
# What a config's name and its weights' origin say about it, not what it computes.
NOT_THE_MODEL = ("name", "description", "base", "keras_application", "torchvision")


def narrowed(layers: list[dict]) -> list[dict]:
    """`layers` cut down: narrower by a common divisor, each stage and each run of alike layers at most
    MAX_REPEAT deep, dense layers at most MAX_DENSE_UNITS wide."""
    channels = [layer[key] for layer in layers for key in CHANNEL_PARAMS if isinstance(layer.get(key), int)]
    divisor = next((d for d in WIDTH_DIVISORS if all(c % d == 0 and c // d >= MIN_CHANNELS for c in channels)), 1)
    shallower: list[dict] = []
    for layer in layers:
        if isinstance(layer.get("repeat"), int):
            layer = {**layer, "repeat": min(layer["repeat"], MAX_REPEAT)}
        if not (len(shallower) >= MAX_REPEAT and all(_alike(layer, kept) for kept in shallower[-MAX_REPEAT:])):
            shallower.append(layer)
    return [{**layer, "units": min(layer["units"], MAX_DENSE_UNITS)} if layer.get("type") == "dense" else
            {**layer, **{key: layer[key] // divisor for key in CHANNEL_PARAMS if isinstance(layer.get(key), int)}}
            for layer in shallower]


def _alike(layer: dict, other: dict) -> bool:
    """The same block with the same settings, but for its name and channel counts."""
    def settings(entry: dict) -> dict:
        return {key: value for key, value in entry.items() if key not in ("name", *CHANNEL_PARAMS)}
    return settings(layer) == settings(other)


def distinct_when_cut_down(paths: list[Path]) -> list[Path]:
    """The shallowest of each set of `paths` whose cut-down models are the same: ResNet-32 to ResNet-110
    export as ResNet-20 does, ResNet-34 as ResNet-18, ResNet-101 and ResNet-152 as ResNet-50, VGG-16 and
    VGG-19 as VGG-13."""
    kept: dict[str, Path] = {}
    raws = {path: load_model_config(path).raw for path in paths}
    for path in sorted(paths, key=lambda path: sum(layer.get("repeat", 1) for layer in raws[path]["layers"])):
        model = {**{key: value for key, value in raws[path].items() if key not in NOT_THE_MODEL},
                 "layers": narrowed(raws[path]["layers"])}
        kept.setdefault(repr(sorted(model.items())), path)
    return [path for path in paths if path in kept.values()]


FLAT_INPUT = {"dense", "classifier"}
FLAT_OUTPUT = {"flatten", "global_avg_pool", "global_max_pool"}


def tiny_config(block: str, input_shape=(16, 16, 4), **args) -> dict:
    """A model of one block of type `block` (required parameters filled in), then a classifier."""
    # every required block parameter is a positive integer (a channel count), so 4 fits them all
    required = {k: 4 for k, (_, default) in BLOCKS[block].params.items() if default is REQUIRED}
    layers = [{"type": block, "name": "block", **required, **args}]
    if block in FLAT_INPUT:
        layers.insert(0, {"type": "flatten", "name": "flatten"})
    elif block not in FLAT_OUTPUT:
        layers.append({"type": "flatten", "name": "flatten"})
    if block != "classifier":
        layers.append({"type": "classifier", "name": "predictions"})
    return {"name": f"tiny_{block}", "input_shape": list(input_shape), "num_classes": 3, "layers": layers}


def keras_macs(layer) -> int:
    """Multiply-accumulates of one Keras layer, computed from its real kernels and output shape."""
    import keras

    spatial = math.prod(layer.output.shape[1:3]) if len(layer.output.shape) == 4 else 1
    if isinstance(layer, keras.layers.SeparableConv2D):
        return spatial * (math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape))
    if isinstance(layer, keras.layers.Conv2D):
        return spatial * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return math.prod(layer.kernel.shape)
    return 0


def run(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs `python ARGS...` in the repository root and captures its output."""
    import os

    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def run_here(*args: str) -> subprocess.CompletedProcess:
    """`python ARGS...` (train.py, evaluate.py, -m zoo or a benchmarks/ script) through its own main() in
    this process, saving the 3 s of a fresh interpreter's TensorFlow import; returned as run() returns it.

    Like a process of its own: file descriptors 1 and 2 are captured, so native libraries' lines
    (libjpeg, LiteRT) are caught too; warnings print as a fresh interpreter prints them; argv[0] is the
    script; Ctrl-C still stops pytest. What only a fresh process shows (TensorFlow's lines at import,
    a logging handler made before the call) stays tested through run()."""
    import importlib
    import os
    import traceback

    import keras

    script, *argv = args
    if script == "-m":
        module, *argv = argv
        assert module == "zoo", module
        main = importlib.import_module("zoo.cli.commands").main
    else:
        folder = str((ROOT / script).parent)  # the root, or benchmarks/
        if folder not in sys.path:
            sys.path.insert(0, folder)
        main = importlib.import_module(Path(script).stem).main
    keras.backend.clear_session(free_memory=False)  # each run names its layers afresh, as in its own process
    cwd, saved_argv = os.getcwd(), sys.argv
    os.chdir(ROOT)
    sys.argv = [script, *argv]
    try:
        with _as_a_process() as output:
            try:
                status = main(argv)
            except SystemExit as stopped:
                status = stopped.code
            except Exception:  # what the interpreter prints before it exits with 1
                traceback.print_exc()
                status = 1
            if isinstance(status, str):  # sys.exit("message")
                print(status, file=sys.stderr)
            status = 1 if isinstance(status, str) else status or 0
    finally:
        os.chdir(cwd)
        sys.argv = saved_argv
    if status == 130:  # exits_cleanly's answer to Ctrl-C, which must stop the test session
        raise KeyboardInterrupt
    return subprocess.CompletedProcess(list(args), status, *output)


@contextlib.contextmanager
def _as_a_process():
    """stdout and stderr at the file-descriptor level, and warnings shown on stderr with a fresh
    interpreter's filters; yields a list that holds (stdout, stderr) once the block ends."""
    import os
    import tempfile
    import warnings

    output: list[str] = []
    files = [tempfile.TemporaryFile(mode="w+", encoding="utf-8") for _ in range(2)]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    streams = [open(fd, "w", encoding="utf-8", closefd=False) for fd in (1, 2)]
    try:
        for fd, file in zip((1, 2), files):
            os.dup2(file.fileno(), fd)
        with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]), \
                warnings.catch_warnings():
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)  # as Python ignores them outside __main__
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: print(
                warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)
            yield output
    finally:
        for stream in streams:
            stream.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        for file in files:
            file.seek(0)
            output.append(file.read())
            file.close()


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
