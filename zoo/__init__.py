"""zoo: the classic convolutional networks as YAML configs, built from one block library with Keras 3.

TensorFlow is imported only when a model is built, so inspecting configs stays fast.
"""
from zoo.models.builder import build_model
from zoo.models.config import load_model_config

__all__ = ["build_model", "load_model_config"]
