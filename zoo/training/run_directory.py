"""The run directory: where a run lives, and the files that record its progress.

`config.yaml` (the resolved experiment), `state.json` (finished epochs and their metrics),
`metrics.csv` and `checkpoint.keras`; a rerun on the same directory resumes from them.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import yaml

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.experiment import Experiment, experiment_from_mapping

CHECKPOINT = "checkpoint.keras"
STATE = "state.json"
METRICS_COLUMNS = ["epoch", "train_loss", "train_accuracy", "train_top5", "eval_loss", "eval_accuracy", "eval_top5",
                   "learning_rate", "epoch_seconds"]


def run_directory(experiment: Experiment, workdir: str | Path | None) -> Path:
    if workdir:
        return Path(workdir).resolve()
    return (Path("runs") / experiment.name / time.strftime("%Y%m%d-%H%M%S")).resolve()


def read_state(run_dir: Path, experiment: Experiment) -> dict[str, Any]:
    """The saved progress of this run directory, refusing one that holds another experiment."""
    saved_config = run_dir / "config.yaml"
    if not saved_config.exists():
        return {"epoch": 0, "history": []}
    # Through the experiment's defaults, so a run saved before a key was added still resumes.
    saved = experiment_from_mapping(yaml.safe_load(saved_config.read_text()), str(saved_config), run_dir).to_dict()
    current = experiment.to_dict()
    if saved != current:
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ZooError(f"--workdir {run_dir} holds a run of a different configuration (sections differing: "
                       f"{', '.join(changed)}); use a new --workdir")
    state_path = run_dir / STATE
    if not state_path.exists():
        return {"epoch": 0, "history": []}
    return json.loads(state_path.read_text())


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    files.write_atomic(path, out.getvalue())
