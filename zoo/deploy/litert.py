"""The LiteRT (TFLite) format: `model.tflite`, and `model_int8.tflite` quantized to 8-bit integers.

The signature `serving_default` takes `images`, uint8 [batch, height, width, channels] at the
training size (LiteRT has no antialiased resize, so resize first), normalised inside, and returns
`probabilities` and `class`. Only LiteRT's builtin ops are allowed: a model that would need a
TensorFlow ("Flex") op is refused with the op's name and nothing is written, where Keras's own
litert export allows Flex ops and writes files the LiteRT interpreter cannot run. The zoo
metadata is a `zoo` entry of the flatbuffer's metadata.

int8 is post-training full-integer quantization: weights and activations are int8, their ranges
calibrated on training images; the uint8 input is normalised in float and quantized by the
first op, and the probabilities are dequantized on the way out, so both files have one signature.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import tensorflow as tf

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.common.quiet import native_stderr_silenced
from zoo.deploy import saved_model
from zoo.deploy.artifact import Artifact, Source, require_metadata
from zoo.deploy.graph import serving_function
from zoo.deploy.runtime import require

METADATA = "zoo"
# how the converter names an op that has no builtin when Flex ops are not allowed
NOT_BUILTIN = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")


def write(source: Source, path: Path, *, int8: bool = False) -> None:
    """Converts `source` to a LiteRT flatbuffer at `path`, with builtin ops only (and int8 if asked)."""
    format = "litert_int8" if int8 else "litert"
    schema = require("ai_edge_litert.schema_py_generated", f"the {format} format")
    with tempfile.TemporaryDirectory(prefix="zoo-litert-") as tmp:
        # The converter reads variables from a SavedModel, as Keras's own litert export does.
        saved_model.write_endpoint(*serving_function(source.model, source.preprocessing, any_size=False), Path(tmp))
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if int8 else
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        if int8:
            if source.calibration_images is None:
                raise ZooError(f"{format}: expected training images to calibrate the quantization, received none")
            images = source.calibration_images()
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ({"images": image[None]} for image in images)
        try:
            with native_stderr_silenced(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the calibrator's notice that tf.lite.Interpreter is deprecated
                flatbuffer = converter.convert()
        except Exception as error:  # the converter raises ConverterError, and others for graphs it cannot lower
            raise refusal(format, error) from None
    metadata = source.metadata(format, dtype="uint8", any_size=False, normalised_inside=True)
    files.write_atomic(path, with_metadata(schema, flatbuffer, metadata))


def refusal(format: str, error: Exception) -> ZooError:
    """One line for a failed conversion: the ops LiteRT lacks, if that is why."""
    text = str(error)
    ops = sorted(set(NOT_BUILTIN.findall(text)))
    if ops:
        return ZooError(f"{format}: the model needs the TensorFlow op{'s' if len(ops) > 1 else ''} {', '.join(ops)}, "
                        f"which LiteRT has no builtin for (it would need Flex ops, SELECT_TF_OPS); nothing was "
                        f"written")
    lines = [line.split("error: ", 1)[1] for line in text.splitlines() if "error: " in line] or text.splitlines()
    return ZooError(f"{format}: the converter failed ({(lines[0] if lines else type(error).__name__)[:300]}); "
                    f"nothing was written")


def with_metadata(schema, flatbuffer: bytes, metadata: dict[str, Any]) -> bytes:
    """The flatbuffer with the zoo metadata added as a named metadata buffer (where LiteRT keeps its own)."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(flatbuffer, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(path: Path) -> dict[str, Any]:
    """The zoo metadata inside a `.tflite` file ({} for one written elsewhere)."""
    schema = require("ai_edge_litert.schema_py_generated", "reading a .tflite file")
    data = Path(path).read_bytes()
    if data[4:8] != b"TFL3":
        raise ZooError(f"expected a LiteRT flatbuffer (file identifier TFL3), received {path} "
                       f"({len(data):,} bytes: empty, damaged or another kind of file)")
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA.encode():
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return {}


def load(path: Path) -> Artifact:
    interpreter = require("ai_edge_litert.interpreter", "running a .tflite file")
    metadata = require_metadata(read_metadata(path), path, "litert")
    runner = interpreter.Interpreter(model_path=str(path), num_threads=os.cpu_count()).get_signature_runner()
    with native_stderr_silenced():  # the first run prints "Created TensorFlow Lite XNNPACK delegate for CPU"
        spec = runner.get_input_details()["images"]
        runner(images=np.zeros(spec["shape"], spec["dtype"]))

    def predict(images: np.ndarray) -> np.ndarray:
        return runner(images=images)["probabilities"]  # the runner resizes its input to the batch

    return Artifact(Path(path), metadata["format"], metadata, predict)
