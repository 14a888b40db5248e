"""Figures as PNG files: matplotlib on its file-only backend, and the atomic write every study's plot goes through.

Shared by visualize, grad_cam and compare; it imports none of them, so they import one way only.
"""
from __future__ import annotations

import io
from pathlib import Path

from zoo.common import files


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
