"""`python -m zoo visualize RUN_DIR`: a finished run's filters, feature maps and training curves as PNGs.

From RUN_DIR/model.keras, RUN_DIR/config.yaml and RUN_DIR/metrics.csv it writes, to
RUN_DIR/visualize/ unless told otherwise:

- input.png: the image given to the model (--image PATH, converted to the model's channels and
  resized by the run's preprocessing, or --index N of the evaluation split), titled with the
  predicted class;
- first_conv_filters.png: the kernels of the first Conv2D (or SeparableConv2D: its depthwise
  kernels), one tile per output filter, each min-max normalised on its own; RGB when the layer
  sees 3 channels, else input channel 0;
- feature_maps_BLOCK.png for each block of the model config that holds a convolution: the output
  of the block's last layer (a conv block's activation, a residual block's `_out`, an inception
  module's `_concat`), up to 16 channels. A layer belongs to the block whose name it starts with
  (`conv2_1_1_conv` to block `conv2_1`; the longest such name wins);
- training_curves.png: loss and accuracy, training against evaluation, per epoch.

It also holds what `zoo.studies.compare` shares with it: `load_run_model`, `pyplot` and `save_figure`.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from zoo.common import files
from zoo.common.errors import ZooError

if TYPE_CHECKING:
    import keras

    from zoo.data.preprocess import Preprocessing
    from zoo.experiment import Experiment

MAX_CHANNELS = 16


# ----------------------------------------------------------------------------- plotting helpers


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    """Writes `figure` as a PNG atomically, closes it and returns `path`."""
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(figure)
    files.write_atomic(path, out.getvalue())
    return path


def tile_grid(tiles: Sequence[np.ndarray], titles: Sequence[str], title: str, path: Path,
              cmap: str = "viridis") -> Path:
    """One image per tile in a square-ish grid; 2-D tiles use `cmap` with their own range, HxWx3 tiles are RGB."""
    plt = pyplot()
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.6 * rows + 0.4), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, tile, label in zip(axes.flat, tiles, titles):
        axis.imshow(tile, cmap=None if tile.ndim == 3 else cmap, interpolation="nearest")
        axis.set_title(label, fontsize=7)
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)


# ----------------------------------------------------------------------------- the run's pieces


def load_run_model(run_dir: Path) -> "keras.Model":
    """RUN_DIR/model.keras, the trained model."""
    from zoo.models.saving import load_keras_model

    path = run_dir / "model.keras"
    if not path.is_file():
        raise ZooError(f"expected model.keras in the run directory {run_dir} (a finished run with export.keras: "
                       "true saves it), received a directory without it")
    return load_keras_model(path)


def load_run(run_dir: Path) -> tuple["keras.Model", "Experiment"]:
    """The run's trained model and its saved, resolved experiment."""
    from zoo.experiment import load_experiment

    if not run_dir.is_dir():
        raise ZooError(f"expected a run directory, received {str(run_dir)!r} (not a directory)")
    if not (run_dir / "config.yaml").is_file():
        raise ZooError(f"expected config.yaml in the run directory {run_dir}, received a directory without it")
    return load_run_model(run_dir), load_experiment(run_dir / "config.yaml")


def read_image(path: Path, preprocessing: "Preprocessing") -> np.ndarray:
    """A PNG, JPEG, BMP or GIF file as a uint8 HxWxC image with the model's channels and size."""
    import tensorflow as tf

    if not path.is_file():
        raise ZooError(f"--image: expected an image file, received {str(path)!r} (no such file)")
    try:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=preprocessing.channels,
                                   expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        reason = error.message.strip().splitlines()[0][:120]
        raise ZooError(f"--image: expected a PNG, JPEG, BMP or GIF image, received {str(path)!r} ({reason})") from None
    return preprocessing.resize_uint8(image).numpy()


def evaluation_image(experiment: "Experiment", preprocessing: "Preprocessing", index: int) -> np.ndarray:
    """Image `index` of the experiment's evaluation split, as the run evaluated it (uint8, the model's size)."""
    from zoo.data.pipeline import load_data

    data = load_data(experiment.data, model_input_size=preprocessing.image_size, batch_size=1, train=False)
    if not 0 <= index < data.eval_examples:
        raise ZooError(f"--index: expected 0 to {data.eval_examples - 1} (the {data.eval_examples} images of split "
                       f"{experiment.data.eval_split!r}), received {index}")
    return next(iter(data.eval_images.skip(index).take(1))).numpy()


def block_names(experiment: "Experiment") -> list[str]:
    """Every block of the run's model config, repeats expanded (`conv2_1`, `conv2_2`, ...)."""
    return [name for spec in experiment.model_config().layers for name, _ in spec.expand()]


def block_outputs(model: "keras.Model", blocks: Sequence[str]) -> list[tuple[str, "keras.layers.Layer"]]:
    """(block, its last layer) for each block holding a convolution whose last layer outputs feature maps."""
    members: dict[str, list] = {name: [] for name in blocks}
    for layer in model.layers:
        owners = [name for name in blocks if layer.name == name or layer.name.startswith(f"{name}_")]
        if owners:
            members[max(owners, key=len)].append(layer)
    return [(name, layers[-1]) for name, layers in members.items()
            if any(map(is_convolution, layers)) and len(layers[-1].output.shape) == 4]


def is_convolution(layer: "keras.layers.Layer") -> bool:
    import keras

    return isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D))


def filter_tiles(layer: "keras.layers.Layer") -> list[np.ndarray]:
    """One min-max normalised tile per output filter (per depthwise kernel of a separable convolution)."""
    import keras

    if isinstance(layer, keras.layers.SeparableConv2D):
        kernel = np.asarray(layer.depthwise_kernel, dtype=np.float32)
        kernel = kernel.reshape(*kernel.shape[:2], 1, -1)
    else:
        kernel = np.asarray(layer.kernel, dtype=np.float32)
    tiles = kernel if kernel.shape[2] == 3 else kernel[:, :, 0, :]
    tiles = np.moveaxis(tiles, -1, 0)
    low = tiles.min(axis=tuple(range(1, tiles.ndim)), keepdims=True)
    high = tiles.max(axis=tuple(range(1, tiles.ndim)), keepdims=True)
    return list((tiles - low) / np.where(high > low, high - low, 1.0))


# ----------------------------------------------------------------------------- the figures


def plot_input(image: np.ndarray, probabilities: np.ndarray, class_names: list[str] | None, path: Path) -> Path:
    plt = pyplot()
    predicted = int(np.argmax(probabilities))
    label = class_names[predicted] if class_names else str(predicted)
    figure, axis = plt.subplots(figsize=(3, 3.3))
    axis.imshow(image if image.shape[-1] == 3 else image[..., 0], cmap="gray", vmin=0, vmax=255)
    axis.axis("off")
    axis.set_title(f"predicted: {label} ({probabilities[predicted]:.1%})", fontsize=9)
    return save_figure(figure, path)


def plot_training_curves(metrics_csv: Path, path: Path) -> Path:
    """Loss and accuracy against epoch, training and evaluation, from the run's metrics.csv."""
    plt = pyplot()
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))

    def column(name: str) -> list[float]:
        return [float(row[name]) if row.get(name) else math.nan for row in rows]

    epochs = [int(row["epoch"]) for row in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for split in ("train", "eval"):  # a run with train.eval_every > 1 scores eval on some epochs only
            points = [(epoch, value) for epoch, value in zip(epochs, column(f"{split}_{metric}")) if not math.isnan(value)]
            axis.plot([epoch for epoch, _ in points], [value for _, value in points], marker="o", label=split)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle(f"training curves ({metrics_csv.parent.name})")
    return save_figure(figure, path)


def visualize(run_dir: str | Path, image: str | Path | None = None, index: int | None = None,
              out_dir: str | Path | None = None) -> list[Path]:
    """Writes the run's PNGs (see the module docstring) and returns their paths.

    `image` is an image file; otherwise `index` (default 0) picks an image of the evaluation split.
    """
    import keras

    from zoo.data.preprocess import Preprocessing
    from zoo.deploy.saved_model import read_metadata

    run_dir = Path(run_dir)
    model, experiment = load_run(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "visualize"
    height, width, channels = model.input_shape[1:]
    preprocessing = Preprocessing((height, width), channels, experiment.data.mean, experiment.data.std)
    if image is not None:
        pixels = read_image(Path(image), preprocessing)
    else:
        pixels = evaluation_image(experiment, preprocessing, 0 if index is None else index)

    outputs = block_outputs(model, block_names(experiment))
    probe = keras.Model(model.inputs, (model.output, [layer.output for _, layer in outputs]))  # nested: never unpacked
    probabilities, feature_maps = probe(preprocessing.normalize(pixels[None]), training=False)
    class_names = read_metadata(run_dir / "saved_model").get("class_names")
    written = [plot_input(pixels, np.asarray(probabilities[0], dtype=np.float32), class_names,
                          out_dir / "input.png")]

    layer = next(filter(is_convolution, model.layers), None)
    if layer is not None:
        tiles = filter_tiles(layer)
        written.append(tile_grid(tiles, [str(i) for i in range(len(tiles))], f"{layer.name}: {len(tiles)} filters",
                                 out_dir / "first_conv_filters.png", cmap="gray"))
    for (block, layer), maps in zip(outputs, feature_maps):
        maps = np.asarray(maps[0], dtype=np.float32)
        shown = min(MAX_CHANNELS, maps.shape[-1])
        written.append(tile_grid([maps[..., c] for c in range(shown)], [f"channel {c}" for c in range(shown)],
                                 f"{layer.name}: {'x'.join(map(str, maps.shape))}, first {shown} channels",
                                 out_dir / f"feature_maps_{block}.png"))

    if (run_dir / "metrics.csv").is_file():
        written.append(plot_training_curves(run_dir / "metrics.csv", out_dir / "training_curves.png"))
    return written
