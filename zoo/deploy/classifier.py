"""A trained model ready for images: `zoo.load(SOURCE)` and `python -m zoo predict`.

SOURCE is a preset name, a run directory (its SavedModel, else its model.keras) or any artifact
(SavedModel, .keras, .tflite, .onnx); or a model config with `weights` (what `create_model` takes,
such as torchvision's ImageNet weights). Whatever it is, `Classifier.predict` takes uint8 images of
any size, mode and number as the files hold them, and brings each to the model's input exactly as
its weights were trained: decoded to the model's channels, resized with the training resize
(antialiased; for torchvision's weights the short side to 256 and the centre crop, as torchvision
evaluates them), normalised with the mean and std the weights carry.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from zoo.common.errors import ZooError, describe_exception
from zoo.data.image_check import op_error_message
from zoo.data.preprocess import Preprocessing, to_channels
from zoo.deploy.formats import open_artifact, run_artifacts
from zoo.deploy.graph import compiled_predict

IMAGE_FORMATS = "PNG, JPEG, GIF or BMP"


@dataclasses.dataclass(frozen=True)
class Classifier:
    """A model that maps uint8 images to class probabilities, with its class names and preprocessing."""

    source: str
    format: str
    class_names: list[str]
    preprocessing: Preprocessing
    _predict: Callable[[np.ndarray], np.ndarray]  # uint8 [batch, height, width, channels] at the input size

    def predict(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities [batch, classes] for uint8 images: a batch array, or a list of any sizes."""
        batch = np.stack([self.prepare(image) for image in images]) if not (
            isinstance(images, np.ndarray) and images.ndim == 4 and tuple(images.shape[1:3]) ==
            self.preprocessing.image_size and images.shape[3] == self.preprocessing.channels) else images
        return np.asarray(self._predict(batch.astype(np.uint8)), dtype=np.float32)

    def prepare(self, image: np.ndarray | tf.Tensor) -> np.ndarray:
        """One uint8 image [height, width, channels] of any size and 1, 3 or 4 channels -> the input size."""
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 2:
            image = image[..., None]
        image = to_channels(image, self.preprocessing.channels)
        return self.preprocessing.resize_uint8(image).numpy()

    def top_k(self, probabilities: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """The k most probable (class name, probability) of each row, most probable first."""
        order = np.argsort(-probabilities, axis=1)[:, :k]
        return [[(self.class_names[i], float(row[i])) for i in ranks] for row, ranks in zip(probabilities, order)]


def decode_file(path: Path, channels: int) -> np.ndarray:
    """A file's pixels as uint8 [h, w, channels]: any mode (grey, RGBA, palette, CMYK, 16-bit), the
    first frame of an animation. A file TensorFlow cannot decode raises a ZooError saying why."""
    try:
        contents = tf.io.read_file(str(path))
        image = tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8)
    except tf.errors.OpError as error:
        raise ZooError(f"not an image TensorFlow decodes ({IMAGE_FORMATS}): {op_error_message(error)}") from None
    return to_channels(image, channels).numpy()


def load_classifier(source: str | Path, weights: str | None = None) -> Classifier:
    """A preset's, a run directory's or an artifact's model, ready for uint8 images; with `weights`, `source`
    is a model config and `weights` what `create_model` takes (`torchvision`, a .pth, a preset...)."""
    from zoo.models.presets import names_a_preset

    text = str(source)
    if weights is not None:
        return _config_classifier(text, weights)
    if names_a_preset(text):
        return _preset_classifier(text)
    path = Path(text)
    if path.is_dir() and not (path / "saved_model.pb").exists():
        found = [p for p in run_artifacts(path) if p.name in ("saved_model", "model.keras")] if (
            path / "config.yaml").exists() else []
        if not found:
            raise ZooError(f"expected a preset, a run directory with saved_model/ or model.keras, or an artifact "
                           f"(SavedModel, .keras, .tflite, .onnx); received {path}, a directory with neither")
        path = found[0]
    artifact = open_artifact(path)
    if artifact.preprocessing is None or not artifact.metadata.get("class_names"):
        raise ZooError(f"{path}: its metadata has no preprocessing or class names (export it with the zoo)")
    return Classifier(str(path), artifact.format, list(artifact.metadata["class_names"]), artifact.preprocessing,
                      artifact.predict)


def _preset_classifier(name: str) -> Classifier:
    from zoo.models.create import create_model
    from zoo.models.presets import get_preset

    preset = get_preset(name)
    model = create_model(preset.model_config, weights=name, verbose=False)
    preprocessing = Preprocessing.from_json(preset.preprocessing)
    return Classifier(name, "preset", preset.class_names, preprocessing, compiled_predict(model, preprocessing))


def _config_classifier(config: str, weights: str) -> Classifier:
    from zoo.models.create import create_model

    model = create_model(config, weights=weights, verbose=False)
    if not model.preprocessing or not model.class_names:
        raise ZooError(f"weights {str(weights)!r} for {config}: they carry no preprocessing or class names to "
                       "classify images with (expected a preset, a run, or torchvision's ImageNet weights)")
    preprocessing = Preprocessing.from_json(model.preprocessing)
    return Classifier(f"{config} with {weights} weights", "keras", model.class_names, preprocessing,
                      compiled_predict(model, preprocessing))


def image_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Each path given, and every file under each folder given (recursively, sorted; hidden ones left out).

    Nothing is filtered by extension: a file that is not an image is reported, not silently skipped.
    """
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(path).parts))
        else:
            yield path


@dataclasses.dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]  # (class name, probability), most probable first


def predict_files(classifier: Classifier, paths: Iterable[Path], *, top: int = 5, batch_size: int = 64,
                  failed: list[tuple[Path, str]] | None = None) -> Iterator[Prediction]:
    """Classifies the files in batches as they are read; each unreadable one goes to `failed` with its reason."""
    failed = [] if failed is None else failed
    batch: list[tuple[Path, np.ndarray]] = []

    def flush() -> Iterator[Prediction]:
        probabilities = classifier.predict(np.stack([image for _, image in batch]))
        for (path, _), row in zip(batch, classifier.top_k(probabilities, top)):
            yield Prediction(path, row)
        batch.clear()

    for path in paths:
        try:
            if not path.is_file():
                raise ZooError("no such file" if not path.exists() else "not a regular file")
            batch.append((path, classifier.prepare(decode_file(path, classifier.preprocessing.channels))))
        except ZooError as error:
            failed.append((path, str(error)))
            continue
        except Exception as error:  # a decoder's unexpected failure is still one file's problem
            failed.append((path, describe_exception(error)))
            continue
        if len(batch) == batch_size:
            yield from flush()
    if batch:
        yield from flush()
