"""The ONNX format: `model.onnx`, converted by tf2onnx (opset 17) and run by onnxruntime.

Input `images`, uint8 [batch, height, width, channels] at the training size (tf2onnx cannot
convert TensorFlow's antialiased resize, so resize first), normalised inside; outputs
`probabilities` and `class`. tf2onnx writes a graph with an op it cannot convert left as a
TensorFlow op, which no ONNX runtime runs: such a graph is refused with the op's name. The zoo
metadata is the model's `zoo` metadata property.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.common.quiet import native_stderr_silenced
from zoo.deploy.artifact import Artifact, Source, require_metadata
from zoo.deploy.graph import serving_function
from zoo.deploy.runtime import require

OPSET = 17  # tf2onnx 1.17 goes to 18; onnxruntime runs 17 since 1.13, so older runtimes load the files too
METADATA = "zoo"


@contextlib.contextmanager
def _tf2onnx_settings(catch_errors: bool) -> Iterator[None]:
    """Quiet tf2onnx (it logs every step, and unsupported ops that `unconverted_ops` reports), careful or not.

    tf2onnx copies the whole graph, weights included, before each of its ~36 optimizer passes,
    so that a pass that fails can be skipped; for a large model that copying is most of the
    conversion (AlexNet: 17 s of 29 s). Any value of TF2ONNX_CATCH_ERRORS turns it off (tf2onnx
    1.17 reads every value as false), and its absence turns it on.
    """
    logger, saved = logging.getLogger("tf2onnx"), os.environ.pop("TF2ONNX_CATCH_ERRORS", None)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    if not catch_errors:
        os.environ["TF2ONNX_CATCH_ERRORS"] = "false"
    try:
        with native_stderr_silenced():
            yield
    finally:
        logger.setLevel(level)
        os.environ.pop("TF2ONNX_CATCH_ERRORS", None)
        if saved is not None:
            os.environ["TF2ONNX_CATCH_ERRORS"] = saved


def convert(tf2onnx, serve, spec: tf.TensorSpec):
    """The ONNX model proto of `serve`: fast, and only if an optimizer pass fails, again carefully."""
    try:
        with _tf2onnx_settings(catch_errors=False):
            return tf2onnx.convert.from_function(tf.function(serve), input_signature=[spec], opset=OPSET)[0]
    except Exception:  # noqa: BLE001 (a failing optimizer pass raises whatever it raises)
        with _tf2onnx_settings(catch_errors=True):
            return tf2onnx.convert.from_function(tf.function(serve), input_signature=[spec], opset=OPSET)[0]


def write(source: Source, path: Path) -> None:
    """Converts `source` to an ONNX model at `path`."""
    onnx = require("onnx", "the onnx format")
    tf2onnx = require("tf2onnx", "the onnx format")
    proto = convert(tf2onnx, *serving_function(source.model, source.preprocessing, any_size=False))
    unconverted = unconverted_ops(onnx, proto)
    if unconverted:
        raise ZooError(f"onnx: tf2onnx left the TensorFlow op{'s' if len(unconverted) > 1 else ''} "
                       f"{', '.join(unconverted)} unconverted, which no ONNX runtime runs; nothing was written")
    metadata = source.metadata("onnx", dtype="uint8", any_size=False, normalised_inside=True)
    proto.metadata_props.add(key=METADATA, value=json.dumps(metadata))
    files.write_atomic(path, proto.SerializeToString())


def unconverted_ops(onnx, proto) -> list[str]:
    """The node types of `proto` that are not ONNX ops (what tf2onnx could not convert)."""
    return sorted({node.op_type for node in proto.graph.node if not onnx.defs.has(node.op_type, node.domain)})


def load(path: Path) -> Artifact:
    onnxruntime = require("onnxruntime", "running an .onnx file")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.log_severity_level = 3  # errors only
    try:
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for a file it cannot load
        raise ZooError(f"expected an ONNX model onnxruntime can load, received {path}: "
                       f"{str(error).splitlines()[0][:300]}") from None
    metadata = require_metadata(read_metadata(session), path, "onnx")

    def predict(images: np.ndarray) -> np.ndarray:
        return session.run(["probabilities"], {"images": images})[0]

    return Artifact(Path(path), "onnx", metadata, predict)


def read_metadata(session) -> dict[str, Any]:
    """The zoo metadata of a loaded ONNX model ({} for one written elsewhere)."""
    value = session.get_modelmeta().custom_metadata_map.get(METADATA)
    return json.loads(value) if value else {}
