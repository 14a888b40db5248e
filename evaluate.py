"""Evaluate a run or an artifact.

    python evaluate.py RUN_DIR_OR_ARTIFACT [--format NAME] [--data NAME] [--split test] [--tta flip] [--json]

An artifact is a SavedModel directory or a .keras, .tflite or .onnx file; a run directory stands
for every artifact it holds (or those picked with --format), evaluated on the same images.
"""
import argparse
import json
import sys

from zoo.common.errors import exits_cleanly
from zoo.common.quiet import import_tensorflow_quietly
from zoo.experiment import EXPORT_FORMATS, check_export_format


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", help="a run directory, a SavedModel directory, or a .keras, .tflite or .onnx file")
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
