"""The run directory: where a run lives, and the files that record its progress.

`config.yaml` (the resolved experiment), `state.json` (finished epochs and their metrics),
`metrics.csv` and `checkpoints/` (zoo.training.checkpoints); a rerun on the same directory
resumes from them.
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

from zoo.common import files
from zoo.common.errors import ConfigError, ZooError
from zoo.common.yamlfiles import load_yaml
from zoo.experiment import Experiment, experiment_from_mapping

STATE = "state.json"
METRICS = "metrics.csv"
METRICS_COLUMNS = ["epoch", "train_loss", "train_accuracy", "train_top5", "eval_loss", "eval_accuracy", "eval_top5",
                   "learning_rate", "epoch_seconds"]


def run_directory(experiment: Experiment, workdir: str | Path | None) -> Path:
    if workdir:
        return Path(workdir).resolve()
    return (Path("runs") / experiment.name / time.strftime("%Y%m%d-%H%M%S")).resolve()


def check_same_experiment(run_dir: Path, experiment: Experiment) -> None:
    """Refuses a run directory that holds a run of another configuration.

    The saved config is read back through the same schema, so keys added to the schema since it was
    written compare at their defaults.
    """
    path = run_dir / "config.yaml"
    if not path.exists():
        return
    try:
        saved = experiment_from_mapping(load_yaml(path), str(path), run_dir).to_dict()
    except ConfigError as error:
        raise ZooError(f"{path} cannot be read as an experiment ({error.message}); it records what the run "
                       "directory holds: restore it, or use a new --workdir") from None
    current = experiment.to_dict()
    if saved != current:
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise ZooError(f"--workdir {run_dir} holds a run of a different configuration (sections differing: "
                       f"{', '.join(changed)}); use a new --workdir")


def read_state(run_dir: Path, experiment: Experiment) -> tuple[dict[str, Any], bool]:
    """The saved progress of this run directory, {"epoch": finished epochs, "history": their metrics,
    "commits": the one it started at, then those it was resumed under (zoo.training.trainer)}, and
    whether state.json recorded it.

    A damaged state.json is reported in one line and its history recovered from metrics.csv; the
    checkpoints then say how far training got (zoo.training.checkpoints).
    """
    check_same_experiment(run_dir, experiment)
    path = run_dir / STATE
    if path.exists():
        try:
            state = json.loads(path.read_text())
            if isinstance(state.get("epoch"), int) and isinstance(state.get("history"), list):
                return state, True
            problem = "expected 'epoch' and 'history'"
        except (json.JSONDecodeError, UnicodeDecodeError, OSError, AttributeError) as error:
            problem = f"{error.__class__.__name__}: {error}"
        print(f"warning: {path} cannot be read ({problem}); recovering progress from {METRICS} and the "
              "checkpoints", file=sys.stderr)
    history = read_metrics_csv(run_dir / METRICS)
    return {"epoch": len(history), "history": history}, False


def read_metrics_csv(path: Path) -> list[dict[str, Any]]:
    """The rows of metrics.csv, numbers as numbers; [] (with a warning) if it is missing or unreadable."""
    if not path.exists():
        return []
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        history = [{"epoch": int(row["epoch"]),
                    **{key: float(value) for key, value in row.items() if key != "epoch" and value not in ("", None)}}
                   for row in rows]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError) as error:
        print(f"warning: {path} cannot be read ({error.__class__.__name__}); earlier epochs' metrics are lost",
              file=sys.stderr)
        return []
    if [row["epoch"] for row in history] != list(range(1, len(history) + 1)):
        print(f"warning: {path} does not list epochs 1, 2, ... in order; earlier epochs' metrics are lost",
              file=sys.stderr)
        return []
    return history


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, METRICS_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    files.write_atomic(path, out.getvalue())
