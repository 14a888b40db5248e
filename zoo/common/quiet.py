"""Importing TensorFlow without its C++ start-up lines on stderr.

TensorFlow's native code prints lines such as "Could not find cuda drivers on your machine"
before its logging is configured, so TF_CPP_MIN_LOG_LEVEL cannot silence them; they would
bury the one line a command prints for bad input. stderr is closed at the file-descriptor
level for the import and the first device query only, so an import failure still reports
its traceback.
"""
from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)  # TFDS's warnings about folders it probed
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
