"""The optional packages the LiteRT and ONNX formats need, imported on first use.

They are the `export` extra (pyproject.toml), not dependencies of the zoo: without them, a
command that needs one stops with one line naming the extra to install, never a traceback.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from zoo.common.errors import ZooError

INSTALL = "pip install -e '.[export]'"
# import name -> the distribution pip installs it from
DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "onnx": "onnx", "onnxruntime": "onnxruntime",
                 "tf2onnx": "tf2onnx"}


def require(module: str, purpose: str) -> ModuleType:
    """Imports `module` (of a package in DISTRIBUTIONS), or raises a ZooError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ZooError(f"{purpose} needs the package {DISTRIBUTIONS[module.split('.')[0]]}, which is not installed "
                       f"(expected the zoo's export extra: {INSTALL})") from None
