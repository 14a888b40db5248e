"""zoo: the classic convolutional networks as YAML configs, built from one block library with Keras 3.

TensorFlow is imported only when a model is built, so inspecting configs stays fast. Importing
the package first turns TensorFlow's oneDNN kernels on where they win and TensorFlow leaves them
off (zoo.common.cpu), so every entry point and the Python API train at the same speed.
"""
from zoo.common.cpu import configure_onednn

configure_onednn()

from zoo.models.builder import build_model  # noqa: E402
from zoo.models.config import load_model_config  # noqa: E402
from zoo.models.create import create_model, list_models  # noqa: E402
from zoo.models.presets import get_preset, list_presets  # noqa: E402

__all__ = ["build_model", "create_model", "get_preset", "list_models", "list_presets", "load_model_config"]
