"""Entry point of `python -m zoo` (see zoo.cli)."""
import sys

from zoo.cli.commands import main

sys.exit(main())
