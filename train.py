"""Train any experiment (or run an ablation sweep): python train.py CONFIG [--set key=value] [--workdir DIR]."""
import argparse
import sys

from zoo.common.errors import exits_cleanly


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="an experiment (configs/experiments/) or ablation (configs/ablations/) file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override any config key, e.g. --set train.epochs=3 (repeatable)")
    parser.add_argument("--workdir", help="the run directory; rerunning with the same one resumes")
    args = parser.parse_args(argv)
    from zoo.cli.runner import run_config

    run_config(args.config, args.overrides, args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
