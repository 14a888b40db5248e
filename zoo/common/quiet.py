"""Keeping native libraries' chatter off stderr, so a command's one-line error stays one line.

TensorFlow's native code prints lines such as "Could not find cuda drivers on your machine"
before its logging is configured, so TF_CPP_MIN_LOG_LEVEL cannot silence them; libjpeg prints
"Input file read error" for a broken file, and the LiteRT converter and its calibrator print
their progress the same way. stderr is closed at the file-descriptor level only around such calls
(the import and first device query, decoding a folder's images, one conversion), so a failure
outside them still reports its traceback and a converter's error still reaches its exception.
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
