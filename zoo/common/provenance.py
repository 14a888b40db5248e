"""Where a result came from: the command that made it and the commit of the zoo's source it ran.

Recorded in every run's summary.json, so a preset's model card can name what trained its weights.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parents[2]  # the checkout holding the zoo package


def command_line() -> str:
    """The command as typed, give or take quoting: `train.py configs/x.yaml --set ...`, `python -m zoo train ...`."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is None:
        words = ["python"]
    elif program.name == "__main__.py":  # python -m PACKAGE
        words = ["python", "-m", program.parent.name]
    else:
        words = [program.name]
    return shlex.join([*words, *sys.argv[1:]])


def source_commit() -> str | None:
    """The git commit of the zoo's checkout, suffixed `-dirty` when tracked files differ from it;
    None for an installed package or a machine without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(SOURCE_DIR), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != SOURCE_DIR:
            return None  # installed inside some other repository: its commit is not the zoo's
        head = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if changed else head
