"""Datasets embedded in the package. Importing this registers them with TFDS."""
from zoo.datasets.patterns import ZooPatterns

__all__ = ["ZooPatterns"]
