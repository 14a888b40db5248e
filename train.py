"""`python train.py CONFIG [--set KEY=VALUE] [--workdir DIR]`: the checkout's name for `zoo train`
(zoo.cli.commands)."""
import sys

from zoo.cli.commands import main as zoo


def main(argv: list[str] | None = None) -> int:
    return zoo(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
