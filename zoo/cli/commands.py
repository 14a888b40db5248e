"""`zoo COMMAND` (or `python -m zoo COMMAND`): every command of the zoo, one subcommand each.

train, evaluate, inspect, models, presets, publish, predict, compare, export, visualize, launch. Each
subcommand parses its arguments here and calls the package; a ZooError becomes one line and exit
status 2 (zoo.common.errors.exits_cleanly). The checkout's train.py and evaluate.py are `zoo train`
and `zoo evaluate` under their old names.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from zoo.common.errors import exits_cleanly
from zoo.common.quiet import import_tensorflow_quietly
from zoo.experiment import EXPORT_FORMATS, check_export_format
from zoo.models.presets import STORAGE

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Registers `run(args) -> exit status` as subcommand `name`."""

    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help, arguments, run)
        return run

    return register


def parse_shape(text: str) -> tuple[int, int, int]:
    """'32,32,3' -> (32, 32, 3)."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W,C as three positive integers, received {text!r}")
    return shape  # type: ignore[return-value]


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="an experiment or an ablation sweep: a shipped one's name (default, "
                                       "mnist_lenet5, cifar10_resnet20_fast, recipe, ...) or a YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override any config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--workdir", help="the run directory; rerunning with the same one resumes")


@command("train", "train an experiment, or run every variant of an ablation sweep; resumable", _train_arguments)
def train_command(args: argparse.Namespace) -> int:
    from zoo.cli.runner import run_config

    run_config(args.config, args.overrides, args.workdir)
    return 0


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SOURCE",
                        help="a run directory (every artifact it holds, on the same images), a SavedModel directory, "
                             "or a .keras, .tflite or .onnx file")
    parser.add_argument("--format", action="append", dest="formats", metavar="NAME",
                        help="in a run directory, evaluate only this format's artifact (repeatable): "
                             f"{', '.join(EXPORT_FORMATS)}")
    parser.add_argument("--data", help="a TFDS dataset name (default: the one the artifact was trained on)")
    parser.add_argument("--data-dir", help="a TFDS data_dir (default: the run's, else TFDS's own)")
    parser.add_argument("--split", help="a split, TFDS slicing allowed (default: the run's evaluation split)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tta", metavar="VIEWS",
                        help="also score the mean over views of each image: flip (the image and its mirror), "
                             "reported beside the single view")
    parser.add_argument("--out", help="where to write evaluation.json and the confusion matrix")
    parser.add_argument("--json", action="store_true", help='print {"results": [one object per artifact]}')


@command("evaluate", "top-1, top-5 and images/s of a run's artifacts (or one artifact) on a dataset split",
         _evaluate_arguments)
def evaluate_command(args: argparse.Namespace) -> int:
    for name in args.formats or ():
        check_export_format(name)  # a typo answered before the 3 s of TensorFlow's import
    import_tensorflow_quietly()
    from zoo.deploy.evaluation import evaluate_all, format_comparison, format_result

    results = evaluate_all(args.target, formats=args.formats, data=args.data, split=args.split,
                           data_dir=args.data_dir, batch_size=args.batch_size, out_dir=args.out, tta=args.tta)
    if args.json:
        print(json.dumps({"results": results}, indent=1))
    else:
        print("\n".join(map(format_result, results)))
        if len(results) > 1:
            print("\n" + format_comparison(results))
    return 0


def _inspect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a model config file or a shipped model's name (e.g. resnet20)")
    parser.add_argument("--input-shape", type=parse_shape, help="override the input as H,W,C")
    parser.add_argument("--num-classes", type=int, help="override the number of classes")
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")


@command("inspect", "one row per block: output shape, parameters, MACs, receptive field", _inspect_arguments)
def inspect_command(args: argparse.Namespace) -> int:
    from zoo.models.analysis import analyze, format_table
    from zoo.models.config import load_model_config

    config = load_model_config(args.config)
    if args.input_shape or args.num_classes:
        config = config.with_overrides(args.input_shape, args.num_classes)
    analysis = analyze(config)
    if args.json:
        print(json.dumps([row.as_json() for row in analysis.rows], indent=1))
    else:
        print(format_table(analysis))
    return 0


def _models_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--update-readme", metavar="README",
                        help="replace the models table and the ImageNet weights table between their markers in README")


@command("models", "the Markdown table of shipped models with parameters and MACs", _models_arguments)
def models_command(args: argparse.Namespace) -> int:
    from zoo.common.files import replace_between_markers
    from zoo.models.analysis import imagenet_weights_table, models_table

    table = models_table()
    if args.update_readme:
        replace_between_markers(args.update_readme, "models", table)
        replace_between_markers(args.update_readme, "imagenet", imagenet_weights_table())
    else:
        print(table)
    return 0


def _presets_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="one preset: print its whole model card")
    parser.add_argument("--json", action="store_true", help="print the cards as JSON")
    parser.add_argument("--update-readme", metavar="README", help="replace the table between the markers in README")


@command("presets", "the zoo's trained weights: one row per preset, or one preset's model card", _presets_arguments)
def presets_command(args: argparse.Namespace) -> int:
    from zoo.models.presets import get_preset, list_presets, presets_table

    if args.name:
        card = get_preset(args.name).card
        print(json.dumps(card, indent=1) if args.json else yaml_dump(card))
    elif args.json:
        print(json.dumps([get_preset(name).card for name in list_presets()], indent=1))
    elif args.update_readme:
        from zoo.common.files import replace_between_markers

        replace_between_markers(args.update_readme, "presets", presets_table())
    else:
        print(presets_table())
    return 0


def yaml_dump(data: object) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, width=110).rstrip()


def _publish_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (with model.keras)")
    parser.add_argument("--name", required=True, help="the preset's name, e.g. resnet20_cifar10")
    parser.add_argument("--description", help="one line for the catalogue (default: model, dataset, experiment)")
    parser.add_argument("--out", help="where the card and weights go (default: the package's zoo/models/presets/)")
    parser.add_argument("--storage", default="float32", choices=STORAGE,
                        help="the weights file's dtype; float16 halves it, and the card measures what that costs "
                             "(default: float32)")


@command("publish", "turn a finished run into a preset: its weights and a model card", _publish_arguments)
def publish_command(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from zoo.training.publish import publish

    card = publish(args.run_dir, args.name, description=args.description,
                   directory=Path(args.out) if args.out else None, storage=args.storage)
    print(f"{card}\n{card.with_name(args.name + '.weights.h5')}")
    return 0


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a preset, a run directory, or an artifact (SavedModel, .keras, .tflite, .onnx); "
                                       "with --weights, a model config")
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER",
                        help="image files (PNG, JPEG, GIF, BMP, any size and mode) or folders, walked recursively")
    parser.add_argument("--top", type=int, default=5, help="how many classes per image (default: 5)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weights", help="weights for the model config SOURCE, as create_model takes them: "
                                          "torchvision (ImageNet), a .pth file, a preset...")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help='print {"predictions": [...], "unreadable": [...]}')
    output.add_argument("--csv", metavar="PATH", help="also write one row per image to PATH")


@command("predict", "classify your own images with a preset, a run or an artifact: top-k classes per image",
         _predict_arguments)
def predict_command(args: argparse.Namespace) -> int:
    from zoo.common.errors import ZooError
    from zoo.models.presets import get_preset, names_a_preset

    for name in ("top", "batch_size"):
        if getattr(args, name) < 1:
            raise ZooError(f"--{name.replace('_', '-')}: expected a positive integer, received {getattr(args, name)}")
    if args.weights is not None:
        from zoo.models.config import load_model_config

        load_model_config(args.source)  # a mistyped name is answered before TensorFlow's 3 s import
    elif names_a_preset(args.source):
        get_preset(args.source)  # the same for a mistyped preset
    import_tensorflow_quietly()
    from zoo.cli.predict import predict

    return predict(args.source, args.images, top=args.top, batch_size=args.batch_size, as_json=args.json,
                   csv_path=args.csv, weights=args.weights)


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (with model.keras or checkpoints/, and config.yaml)")
    parser.add_argument("--format", action="append", dest="formats", metavar="NAME",
                        help=f"{', '.join(EXPORT_FORMATS)} (repeatable; default: the formats the run's export: "
                             "section switches on)")


@command("export", "export a run again, in any format, each verified against the Keras model", _export_arguments)
def export_command(args: argparse.Namespace) -> int:
    for name in args.formats or ():
        check_export_format(name)  # a typo answered before the 3 s of TensorFlow's import
    import_tensorflow_quietly()
    from zoo.deploy.export import reexport_run

    for path in reexport_run(args.run_dir, args.formats).values():
        print(path)
    return 0


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("references", nargs="+", metavar="CONFIG_OR_RUN",
                        help="a model config file, a shipped model's name (e.g. resnet20) or a run directory")
    parser.add_argument("--out", default="compare", help="where compare.md, compare.csv and the plot go "
                                                          "(default: ./compare)")
    parser.add_argument("--no-timing", action="store_true", help="skip the inference timing (faster)")


@command("compare", "configs and trained runs side by side: size, MACs, speed, SavedModel size, accuracy",
         _compare_arguments)
def compare_command(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from zoo.studies.compare import compare

    compare(args.references, args.out, timing=not args.no_timing)
    return 0


def _visualize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="SOURCE", help="a finished run directory (with model.keras) or a preset")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", help="a PNG, JPEG, GIF or BMP image to run through the model")
    source.add_argument("--index", type=int, help="an image of the run's evaluation split (default: 0)")
    parser.add_argument("--grad-cam", action="store_true", help="draw the class activation map over the image")
    parser.add_argument("--class", dest="class_name", metavar="NAME",
                        help="Grad-CAM's class (default: the predicted one)")
    parser.add_argument("--layer", metavar="NAME", help="Grad-CAM's layer or block (default: the last spatial one)")
    parser.add_argument("--out", help="where the PNGs go (default: RUN_DIR/visualize, ./visualize for a preset)")


@command("visualize", "PNGs of a run or preset: input, Grad-CAM, first-layer filters, feature maps, curves",
         _visualize_arguments)
def visualize_command(args: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from zoo.studies.visualize import visualize

    for path in visualize(args.run_dir, image=args.image, index=args.index, out_dir=args.out,
                          grad_cam=args.grad_cam, class_name=args.class_name, layer=args.layer):
        print(path)
    return 0


def _launch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, required=True, help="how many worker processes to start")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, metavar="-- EXPERIMENT [zoo train's args]",
                        help="what each worker runs: zoo train's arguments")


@command("launch", "train one experiment with N local workers (MultiWorkerMirroredStrategy), as a cluster would",
         _launch_arguments)
def launch_command(args: argparse.Namespace) -> int:
    from zoo.cli.launch import launch

    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    return launch(args.workers, train_args)


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    started_as = Path(sys.argv[0]).name if sys.argv else ""
    prog = "python -m zoo" if started_as == "__main__.py" else "zoo"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help, arguments, _) in COMMANDS.items():
        arguments(subparsers.add_parser(name, help=help, description=help))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except BrokenPipeError:  # `python -m zoo inspect ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
