"""`python -m zoo visualize SOURCE`: a run's or a preset's filters, feature maps, Grad-CAM and curves as PNGs.

SOURCE is a finished run directory (RUN_DIR/model.keras, config.yaml and metrics.csv) or a preset
(which needs --image). It writes, to RUN_DIR/visualize/ (./visualize for a preset) unless told
otherwise:

- input.png: the image given to the model (--image PATH, converted to the model's channels and
  resized by the run's preprocessing, or --index N of the evaluation split), titled with the
  predicted class;
- grad_cam.png, with --grad-cam: the class activation map (zoo.studies.grad_cam) of the predicted
  class (or --class NAME) at the last spatial layer (or --layer NAME), over the image;
- first_conv_filters.png: the kernels of the first Conv2D (or SeparableConv2D: its depthwise
  kernels), one tile per output filter, each min-max normalised on its own; RGB when the layer
  sees 3 channels, else input channel 0;
- feature_maps_BLOCK.png for each block of the model config that holds a convolution: the output
  of the block's last layer (a conv block's activation, a residual block's `_out`, an inception
  module's `_concat`), up to 16 channels. A layer belongs to the block whose name it starts with
  (`conv2_1_1_conv` to block `conv2_1`; the longest such name wins);
- training_curves.png: loss and accuracy, training against evaluation, per epoch.

It also holds what `zoo.studies.compare` shares with it: `load_run_model`.
"""
from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from zoo.common.errors import ZooError, did_you_mean, unknown
from zoo.studies.figures import pyplot, save_figure

if TYPE_CHECKING:
    import keras

    from zoo.data.preprocess import Preprocessing
    from zoo.experiment import Experiment

MAX_CHANNELS = 16


# ----------------------------------------------------------------------------- plotting helpers


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


@dataclasses.dataclass(frozen=True)
class Opened:
    """What the figures need of a run directory or a preset."""

    model: "keras.Model"
    preprocessing: "Preprocessing"
    class_names: list[str] | None
    blocks: list[str]  # the model config's blocks, repeats expanded
    run_dir: Path | None = None
    experiment: "Experiment | None" = None


def open_source(source: str | Path) -> Opened:
    """A run directory's trained model and experiment, or a preset's model."""
    from zoo.data.preprocess import Preprocessing
    from zoo.models.presets import get_preset, is_preset, list_presets

    if is_preset(str(source)):
        from zoo.models.create import create_model

        preset = get_preset(str(source))
        model = create_model(preset.model_config, weights=preset.name, verbose=False)
        return Opened(model, Preprocessing.from_json(preset.preprocessing), preset.class_names,
                      [name for spec in preset.model_config.layers for name, _ in spec.expand()])
    from zoo.models.saving import read_metadata

    run_dir = Path(source)
    if not run_dir.exists() and did_you_mean(str(source), list_presets()):
        get_preset(str(source))  # a mistyped preset name: one line with its did-you-mean
    model, experiment = load_run(run_dir)
    height, width, channels = model.input_shape[1:]
    preprocessing = Preprocessing((height, width), channels, experiment.data.mean, experiment.data.std)
    class_names = read_metadata(run_dir / "model.keras").get("class_names")
    return Opened(model, preprocessing, class_names, block_names(experiment), run_dir, experiment)


def read_image(path: Path, preprocessing: "Preprocessing") -> np.ndarray:
    """A PNG, JPEG, BMP or GIF file, any mode, as a uint8 HxWxC image with the model's channels and size."""
    from zoo.deploy.classifier import decode_file

    if not path.is_file():
        raise ZooError(f"--image: expected an image file, received {str(path)!r} (no such file)")
    try:
        image = decode_file(path, preprocessing.channels)
    except ZooError as error:
        raise ZooError(f"--image: expected a PNG, JPEG, BMP or GIF image, received {str(path)!r} ({error})") from None
    return np.asarray(preprocessing.resize_uint8(image))  # a tensor, or the image itself at the model's size


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


def visualize(source: str | Path, image: str | Path | None = None, index: int | None = None,
              out_dir: str | Path | None = None, grad_cam: bool = False, class_name: str | None = None,
              layer: str | None = None) -> list[Path]:
    """Writes the PNGs (see the module docstring) of a run directory or a preset, and returns their paths.

    `image` is an image file; otherwise `index` (default 0) picks an image of a run's evaluation
    split. With `grad_cam`, grad_cam.png shows where `layer` (a layer or block name; default the
    last spatial one) found the evidence for `class_name` (default: the predicted class).
    """
    import keras

    from zoo.studies.grad_cam import class_activation_map, find_layer, last_spatial_layer, plot_grad_cam

    opened = open_source(source)
    model, preprocessing, class_names = opened.model, opened.preprocessing, opened.class_names
    out_dir = Path(out_dir) if out_dir is not None else (opened.run_dir or Path(".")) / "visualize"
    if image is not None:
        pixels = read_image(Path(image), preprocessing)
    elif opened.experiment is None:
        raise ZooError(f"--image: expected an image file to show {source} (a preset has no evaluation split here)")
    else:
        pixels = evaluation_image(opened.experiment, preprocessing, 0 if index is None else index)

    outputs = block_outputs(model, opened.blocks)
    probe = keras.Model(model.input, (model.output, [layer.output for _, layer in outputs]))  # nested: never unpacked
    inputs = np.asarray(preprocessing.normalize(pixels[None]))
    probabilities, feature_maps = probe(inputs, training=False)
    probabilities = np.asarray(probabilities[0], dtype=np.float32)
    written = [plot_input(pixels, probabilities, class_names, out_dir / "input.png")]

    if grad_cam:
        target = find_layer(model, layer, dict(outputs)) if layer else last_spatial_layer(model)
        names = class_names or [str(i) for i in range(len(probabilities))]
        if class_name is None:
            chosen = int(np.argmax(probabilities))
        elif class_name in names:
            chosen = names.index(class_name)
        else:
            raise ZooError(f"--class: {unknown('class', class_name, names)}")
        cam = class_activation_map(model, inputs, chosen, target)
        written.append(plot_grad_cam(pixels, cam, f"{names[chosen]} ({probabilities[chosen]:.1%}) at {target.name}",
                                     out_dir / "grad_cam.png"))

    conv = next(filter(is_convolution, model.layers), None)
    if conv is not None:
        tiles = filter_tiles(conv)
        written.append(tile_grid(tiles, [str(i) for i in range(len(tiles))], f"{conv.name}: {len(tiles)} filters",
                                 out_dir / "first_conv_filters.png", cmap="gray"))
    for (block, block_layer), maps in zip(outputs, feature_maps):
        maps = np.asarray(maps[0], dtype=np.float32)
        shown = min(MAX_CHANNELS, maps.shape[-1])
        written.append(tile_grid([maps[..., c] for c in range(shown)], [f"channel {c}" for c in range(shown)],
                                 f"{block_layer.name}: {'x'.join(map(str, maps.shape))}, first {shown} channels",
                                 out_dir / f"feature_maps_{block}.png"))

    if opened.run_dir and (opened.run_dir / "metrics.csv").is_file():
        written.append(plot_training_curves(opened.run_dir / "metrics.csv", out_dir / "training_curves.png"))
    return written
