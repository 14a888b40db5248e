"""Per-epoch checkpoints: written atomically, the last few kept, and the newest readable one found.

Each checkpoint is `checkpoints/epoch-NNNN.keras`: the model with its optimizer state (and so the
schedule's position). Its name is the record of how far training got, so progress survives a lost
or damaged state.json. Resuming walks from the newest checkpoint back and takes the first one that
loads, naming each one it passes over and why.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import keras

from zoo.common import files
from zoo.common.errors import ZooError
from zoo.models.saving import KerasFileUnreadable, load_keras_model
from zoo.training import schedules  # noqa: F401  (registers the schedule a checkpoint's optimizer holds)

DIRECTORY = "checkpoints"
_NAME = re.compile(r"^epoch-(\d+)\.keras$")


class NoReadableCheckpoint(ZooError):
    """A run directory whose progress cannot be restored from any checkpoint."""


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / DIRECTORY / f"epoch-{epoch:04d}.keras"


def saved_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint in the run directory, newest first."""
    folder = run_dir / DIRECTORY
    found = [(int(match[1]), path) for path in folder.glob("epoch-*.keras") if (match := _NAME.match(path.name))]
    return sorted(found, reverse=True)


def save_checkpoint(model: keras.Model, run_dir: Path, epoch: int) -> Path:
    """Writes epoch `epoch`'s checkpoint (atomically: a crash leaves the old files as they were)."""
    path = checkpoint_path(run_dir, epoch)
    files.write_atomic_with(path, model.save)
    return path


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Removes all but the newest `keep` checkpoints; called once state.json names the newest."""
    for _, old in saved_checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)


def load_newest_checkpoint(run_dir: Path, at_most: int | None = None) -> tuple[int, keras.Model]:
    """The newest checkpoint of epoch <= `at_most` that loads, with its epoch; a note for each one skipped.

    `at_most` is the last epoch state.json recorded: a checkpoint written just before a crash that
    stopped state.json's update is newer than the metrics, and is trained again rather than used.
    """
    tried = []
    for epoch, path in saved_checkpoints(run_dir):
        if at_most is not None and epoch > at_most:
            continue
        try:
            model = load_keras_model(path, compile=True)
        except KerasFileUnreadable as error:
            tried.append((path, error.reason))
            continue
        for skipped, reason in tried:  # reported once one loads; if none does, the error lists them
            print(f"warning: {skipped} cannot be read ({reason}); resuming from {path.name}", file=sys.stderr)
        return epoch, model
    found = f" (tried {'; '.join(f'{path.name}: {reason}' for path, reason in tried)})" if tried else ""
    raise NoReadableCheckpoint(f"{run_dir} has no readable checkpoint in {DIRECTORY}/{found}; its progress cannot "
                               "be restored: start again with a new --workdir")
