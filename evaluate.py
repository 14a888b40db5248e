"""Evaluate a run or a SavedModel: python evaluate.py RUN_DIR_OR_SAVEDMODEL [--data NAME] [--split test] [--json]."""
import argparse
import json
import sys

from zoo.common.errors import exits_cleanly
from zoo.common.quiet import import_tensorflow_quietly


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", help="a run directory or a SavedModel directory")
    parser.add_argument("--data", help="a TFDS dataset name (default: the run's own dataset)")
    parser.add_argument("--data-dir", help="a TFDS data_dir (default: the run's, else TFDS's own)")
    parser.add_argument("--split", default="test", help="a split, TFDS slicing allowed (default: test)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", help="where to write evaluation.json and the confusion matrix")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    import_tensorflow_quietly()

    from zoo.deploy.evaluation import evaluate, format_result

    result = evaluate(args.target, data=args.data, split=args.split, data_dir=args.data_dir,
                      batch_size=args.batch_size, out_dir=args.out)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
