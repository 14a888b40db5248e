"""Datasets embedded in the package. Importing this registers them with TFDS."""
from zoo.data.datasets.patterns import ZooPatterns

__all__ = ["ZooPatterns"]
