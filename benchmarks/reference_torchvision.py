"""torchvision's models with random weights beside the zoo's twins: what the converter's parity is measured
on, by tests/test_torchvision_weights.py and `make bench` (torchvision_parity.py). Needs torch and
torchvision (the bench extra); `models()` raises ImportError without them.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np


def models():
    """torchvision.models. PyPI's torchvision is built for PyPI's CUDA torch: beside the CPU torch its
    compiled ops do not load, and torchvision/__init__.py fails registering them. Its model definitions
    are plain Python, so they are imported without that __init__ (parity needs the models, not the ops)."""
    import torch  # noqa: F401  (ImportError without it)

    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        raise ImportError("torchvision is not installed")
    try:
        return importlib.import_module("torchvision.models")
    except (ImportError, RuntimeError, OSError):
        sys.modules["torchvision"] = importlib.util.module_from_spec(spec)  # the package, its __init__ not run
        for name in [name for name in sys.modules if name.startswith("torchvision.")]:
            del sys.modules[name]  # what the failed import left half-made
        return importlib.import_module("torchvision.models")


def random_twin(name: str, folder: Path, file_name: str | None = None):
    """torchvision's model of config `name`'s twin with random weights and batch-norm statistics, in eval
    mode, and its state_dict saved in `folder` as a .pth file."""
    import torch

    from zoo.models.config import load_model_config

    zoo_of = models()
    torch.manual_seed(0)
    network = getattr(zoo_of, load_model_config(name).torchvision.model)(weights=None).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in network.modules():  # a fresh batch norm is the identity: a swapped tensor would not show
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(0.5 * torch.randn(size, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
                module.weight.copy_(1 + 0.5 * torch.randn(size, generator=generator))
                module.bias.copy_(0.5 * torch.randn(size, generator=generator))
    path = Path(folder) / (file_name or f"{name}.pth")
    torch.save(network.state_dict(), path)
    return network, path


def logits(model, x: np.ndarray) -> np.ndarray:
    """A zoo model's logits: its classifier's input times its kernel, before the softmax that saturates
    on random weights."""
    import keras

    head = model.layers[-1]
    features = np.asarray(keras.Model(model.input, head.input)(x, training=False))
    return features @ np.asarray(head.kernel) + np.asarray(head.bias)


def torchvision_logits(network, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return network(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()


def parity(name: str, folder: Path) -> tuple[float, float]:
    """(largest logit difference / largest logit, seconds) of config `name` loaded from a random twin's
    state_dict, against the twin, on two random 224x224 images."""
    from zoo.models.create import create_model

    started = time.perf_counter()
    network, path = random_twin(name, folder)
    model = create_model(name, weights=path, verbose=False)
    x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype("float32")
    expected = torchvision_logits(network, x)
    difference = float(np.abs(logits(model, x) - expected).max() / np.abs(expected).max())
    return difference, time.perf_counter() - started
