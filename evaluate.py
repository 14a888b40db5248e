"""`python evaluate.py SOURCE [--format NAME] [--split test] ...`: the checkout's name for `zoo evaluate`
(zoo.cli.commands)."""
import sys

from zoo.cli.commands import main as zoo


def main(argv: list[str] | None = None) -> int:
    return zoo(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
