"""What `train.py CONFIG` runs: one experiment, or every variant of an ablation sweep."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.common.quiet import import_tensorflow_quietly
from zoo.common.shipped import config_path
from zoo.common.yamlfiles import load_yaml
from zoo.experiment import load_experiment
from zoo.training.cluster import this_worker


def run_config(path: str | Path, overrides: list[str] = (), workdir: str | Path | None = None) -> Any:
    """Trains the experiment in `path` (or sweeps the ablation; either may be a shipped config's name) and
    returns its summary (or results)."""
    path = config_path(path, "experiment")
    raw = load_yaml(path)
    if isinstance(raw, dict) and "axes" in raw:
        import_tensorflow_quietly()
        from zoo.studies.ablation import run_ablation

        return run_ablation(path, overrides, workdir)
    # The experiment and TF_CONFIG are checked before TensorFlow's import, so a mistyped key is answered
    # in a fraction of a second rather than after the 3 s that import takes.
    experiment = load_experiment(path, overrides)
    this_worker(workdir)  # train() asks again, for callers of the Python API
    import_tensorflow_quietly()
    from zoo.training.trainer import train

    return train(experiment, workdir)
