"""Importing TensorFlow, and running its model converters, without their C++ lines on stderr.

TensorFlow's native code prints lines such as "Could not find cuda drivers on your machine"
before its logging is configured, so TF_CPP_MIN_LOG_LEVEL cannot silence them; they would
bury the one line a command prints for bad input. The LiteRT converter and its calibrator
print their progress the same way. stderr is closed at the file-descriptor level for the
import and the first device query, or for one conversion, only, so an import failure still
reports its traceback and a converter's error still reaches its exception.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Within the block, what native code (and Python) writes to file descriptor 2 goes nowhere."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)  # TFDS's warnings about folders it probed
    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
