"""What `train.py CONFIG` runs: one experiment, or every variant of an ablation sweep."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.common.yamlfiles import load_yaml
from zoo.experiment import load_experiment


def run_config(path: str | Path, overrides: list[str] = (), workdir: str | Path | None = None) -> Any:
    """Trains the experiment in `path` (or sweeps the ablation) and returns its summary (or results)."""
    raw = load_yaml(path)
    if isinstance(raw, dict) and "axes" in raw:
        from zoo.studies.ablation import run_ablation

        return run_ablation(path, overrides, workdir)
    from zoo.training.trainer import train

    return train(load_experiment(path, overrides), workdir)
