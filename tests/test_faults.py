"""Faults of real machines and data folders, through the command lines a user types: damaged run
files, unreadable images, full or read-only disks, two processes on one run directory.

Each asserts the exit status, the one-line message (no traceback) and that nothing earlier was lost.
The commands run through their own main() in this process (helpers.run_here), and in processes of
their own where processes are the point: two of them on one run directory, a kill -9.
"""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, assert_one_line_error, run_here
from PIL import Image

SHORT = ["train.epochs=3", "train.steps_per_epoch=3", "train.eval_steps=1", "train.batch_size=16",
         "export.saved_model=false"]


def train_default(workdir: Path, patterns_dir: str, *settings: str) -> subprocess.CompletedProcess:
    return run_here("train.py", "configs/experiments/default.yaml", "--workdir", str(workdir),
                    *[f"--set={s}" for s in [*SHORT, f"data.data_dir={patterns_dir}", *settings]])


def epochs_recorded(workdir: Path) -> list[int]:
    return [row["epoch"] for row in json.loads((workdir / "state.json").read_text())["history"]]


def checkpoints(workdir: Path) -> list[str]:
    return sorted(path.name for path in (workdir / "checkpoints").glob("*.keras"))


def truncate(path: Path, size: int = 500) -> None:
    path.write_bytes(path.read_bytes()[:size])


def unfinish(workdir: Path) -> None:
    """Makes a finished run look like one interrupted after its last epoch's records."""
    (workdir / "summary.json").unlink()
    (workdir / "model.keras").unlink()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, patterns_dir):
    workdir = tmp_path_factory.mktemp("faults") / "run"
    result = train_default(workdir, patterns_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    return workdir


@pytest.fixture
def damaged_copy(finished_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    unfinish(workdir)
    return workdir


# ----------------------------------------------------------------------------- damaged run files


def test_the_last_two_checkpoints_are_kept(finished_run):
    assert checkpoints(finished_run) == ["epoch-0002.keras", "epoch-0003.keras"]


def test_keep_checkpoints_is_configurable(tmp_path, patterns_dir):
    result = train_default(tmp_path / "run", patterns_dir, "train.keep_checkpoints=1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert checkpoints(tmp_path / "run") == ["epoch-0003.keras"]


def test_damaged_newest_checkpoint_resumes_from_the_one_before(damaged_copy, patterns_dir):
    truncate(damaged_copy / "checkpoints" / "epoch-0003.keras")
    result = train_default(damaged_copy, patterns_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "epoch-0003.keras cannot be read" in warnings[0], result.stderr
    assert "not a complete .keras archive" in warnings[0]
    assert "going back to epoch 2" in result.stdout and "at epoch 3 of 3" in result.stdout
    assert epochs_recorded(damaged_copy) == [1, 2, 3]
    assert json.loads((damaged_copy / "summary.json").read_text())["epochs"] == 3


def test_damaged_state_json_is_recovered_from_metrics_and_checkpoints(damaged_copy, patterns_dir):
    truncate(damaged_copy / "state.json", 30)
    (damaged_copy / "checkpoints" / "epoch-0003.keras").unlink()  # as if killed before its state was written
    result = train_default(damaged_copy, patterns_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "state.json cannot be read (JSONDecodeError" in result.stderr
    assert "Traceback" not in result.stderr
    assert "at epoch 3 of 3" in result.stdout
    assert epochs_recorded(damaged_copy) == [1, 2, 3]


def test_no_readable_checkpoint_is_one_line_and_deletes_nothing(damaged_copy, patterns_dir):
    for path in (damaged_copy / "checkpoints").glob("*.keras"):
        truncate(path)
    before = sorted(str(p.relative_to(damaged_copy)) for p in damaged_copy.rglob("*"))
    result = train_default(damaged_copy, patterns_dir)
    assert_one_line_error(result, "has no readable checkpoint", "epoch-0003.keras", "epoch-0002.keras",
                          "new --workdir")
    assert sorted(str(p.relative_to(damaged_copy)) for p in damaged_copy.rglob("*")) == before


def test_damaged_config_yaml_is_one_line(damaged_copy, patterns_dir):
    (damaged_copy / "config.yaml").write_text("name: [unclosed\n")
    assert_one_line_error(train_default(damaged_copy, patterns_dir), "config.yaml cannot be read", "--workdir")


# ----------------------------------------------------------------------------- broken images


def image_folder(root: Path, per_class: int = 12) -> Path:
    """FOLDER/SPLIT/CLASS/*.png of small random images, two classes."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, value in (("dark", 50), ("light", 200)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(value, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def train_folder(folder: Path, workdir: Path, *settings: str) -> subprocess.CompletedProcess:
    return run_here("train.py", "configs/experiments/default.yaml", "--workdir", str(workdir),
                    *[f"--set={s}" for s in ["data.folder=" + str(folder), "data.image_size=[32, 32]",
                                             "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=8",
                                             "data.mean=[0.5]", "data.std=[0.25]", "export.saved_model=false",
                                             *settings]])


def test_a_file_that_is_not_an_image_stops_before_training_naming_it(tmp_path):
    folder = image_folder(tmp_path / "images")
    broken = folder / "train" / "dark" / "broken.png"
    broken.write_text("this is not a picture")
    result = train_folder(folder, tmp_path / "run")
    assert_one_line_error(result, str(broken), "not a readable image", "data.bad_images: skip")
    assert not (tmp_path / "run" / "checkpoints").exists()  # no training time spent


def test_unreadable_images_are_skipped_counted_and_recorded(tmp_path):
    folder = image_folder(tmp_path / "images")
    (folder / "train" / "dark" / "broken.png").write_text("this is not a picture")
    whole = (folder / "train" / "light" / "0.png").read_bytes()
    (folder / "train" / "light" / "cut.png").write_bytes(whole[:len(whole) // 2])  # a truncated PNG
    result = train_folder(folder, tmp_path / "run", "data.bad_images=skip")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped 2 unreadable image(s) of 26 in split 'train'" in result.stdout
    skipped = json.loads((tmp_path / "run" / "summary.json").read_text())["skipped_images"]
    assert skipped["train"]["count"] == 2
    assert {Path(p).name for p in skipped["train"]["first"]} == {"broken.png", "cut.png"}


def test_files_the_folder_reader_passes_over_are_named_not_dropped(tmp_path):
    folder = image_folder(tmp_path / "images")
    gif = folder / "train" / "dark" / "cat.gif"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(gif)
    (folder / "train" / "light" / ".DS_Store").write_text("hidden files are the system's, not the user's")
    assert_one_line_error(train_folder(folder, tmp_path / "run"), "1 file(s) of split 'train' are not",
                          str(gif), "data.bad_images: skip")
    result = train_folder(folder, tmp_path / "run2", "data.bad_images=skip")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "skipped 1 file(s) of split 'train' that are not .jpg/.jpeg/.png images" in result.stdout
    skipped = json.loads((tmp_path / "run2" / "summary.json").read_text())["skipped_images"]
    assert skipped["train"] == {"count": 1, "first": [str(gif)]}


def test_evaluate_checks_the_folder_too(tmp_path):
    folder = image_folder(tmp_path / "images")
    assert train_folder(folder, tmp_path / "run", "export.saved_model=true").returncode == 0
    broken = folder / "test" / "light" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert_one_line_error(run_here("evaluate.py", str(tmp_path / "run")), str(broken), "not a readable image")


def test_the_folder_listing_tfds_keeps_is_where_the_check_reads_it(tmp_path):
    """zoo.data.image_check reads tfds.ImageFolder's private list of files: fail loudly if it moves."""
    import tensorflow_datasets as tfds

    from zoo.data.image_check import folder_image_paths

    folder = image_folder(tmp_path / "images", per_class=2)
    paths = folder_image_paths(tfds.ImageFolder(str(folder)), "train")
    assert sorted(Path(p).name for p in paths) == ["0.png", "0.png", "1.png", "1.png"]


# ----------------------------------------------------------------------------- full and read-only disks


@contextlib.contextmanager
def small_filesystem(path: Path, size: str):
    """A tmpfs of `size` at `path`; skips the test where this machine does not allow mounting."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()[:120]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def test_full_disk_stops_with_one_line_and_a_rerun_continues_once_space_is_freed(tmp_path, patterns_dir):
    # 512 KiB holds the config, metrics and TensorBoard files but not a 1 MB checkpoint
    with small_filesystem(tmp_path / "disk", "512k") as disk:
        workdir = disk / "run"
        result = train_default(workdir, patterns_dir)
        assert result.returncode == 1, result.stderr[-2000:]
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines[-1].startswith(f"error: cannot write {workdir / 'checkpoints' / 'epoch-0001.keras'}: "), lines
        assert "No space left on device (ENOSPC)" in lines[-1] and "Traceback" not in result.stderr
        assert not [p for p in workdir.rglob("*") if ".tmp" in p.name]  # no half-written file left behind
        remount(disk, "size=64m")
        result = train_default(workdir, patterns_dir)
        assert result.returncode == 0, result.stderr[-2000:]
        assert epochs_recorded(workdir) == [1, 2, 3]


def test_read_only_run_directory_is_one_line_and_keeps_the_run(finished_run, tmp_path, patterns_dir):
    with small_filesystem(tmp_path / "disk", "16m") as disk:
        workdir = disk / "run"
        shutil.copytree(finished_run, workdir)
        unfinish(workdir)
        before = (workdir / "state.json").read_bytes()
        remount(disk, "ro")
        result = train_default(workdir, patterns_dir)
        assert result.returncode == 1, result.stderr[-2000:]
        assert "Read-only file system (EROFS)" in result.stderr and "Traceback" not in result.stderr
        remount(disk, "rw")
        assert (workdir / "state.json").read_bytes() == before
        assert train_default(workdir, patterns_dir).returncode == 0


def test_a_write_refused_mid_run_keeps_the_last_checkpoint_and_state(tmp_path, patterns_dir, monkeypatch):
    """An OSError injected when epoch 2's checkpoint is written (in this process, to inject it)."""
    import errno

    import keras

    real_save = keras.Model.save

    def save(model, path, *args, **kwargs):
        if "epoch-0002" in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)
    workdir = tmp_path / "run"
    result = train_default(workdir, patterns_dir)
    assert result.returncode == 1, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert "cannot write" in error and "epoch-0002.keras" in error and "Permission denied (EACCES)" in error
    assert checkpoints(workdir) == ["epoch-0001.keras"] and epochs_recorded(workdir) == [1]

    monkeypatch.setattr(keras.Model, "save", real_save)
    result = train_default(workdir, patterns_dir)
    assert result.returncode == 0 and "at epoch 2 of 3" in result.stdout, result.stderr[-2000:]
    assert epochs_recorded(workdir) == [1, 2, 3]


# ----------------------------------------------------------------------------- one writer per run directory


def test_a_live_run_refuses_a_second_process_and_after_kill_9_resumes_without_training_an_epoch_twice(
        tmp_path, patterns_dir):
    workdir = tmp_path / "run"
    command = [sys.executable, "train.py", "configs/experiments/default.yaml", "--workdir", str(workdir),
               *[f"--set={s}" for s in ["train.epochs=5", "train.steps_per_epoch=60", "train.eval_steps=2",
                                        "export.saved_model=false", f"data.data_dir={patterns_dir}"]]]
    log = tmp_path / "first.log"
    first = subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    state = workdir / "state.json"
    try:
        deadline = time.time() + 300
        while time.time() < deadline and first.poll() is None:
            if state.exists() and json.loads(state.read_text())["epoch"] >= 1:
                break
            time.sleep(0.05)
        # Stopped once its first epoch is saved: alive, holding the lock, for as long as the refusal takes
        # (the other four epochs took 2 s on an idle Intel Xeon, less than this process's TensorFlow import).
        assert first.poll() is None and state.exists(), f"the first run ended or never got under way: " \
                                                        f"{log.read_text()[-2000:]}"
        os.killpg(first.pid, signal.SIGSTOP)
        second = run_here(*command[1:])  # another process holds the lock: this one needs no process of its own
        assert_one_line_error(second, f"run directory {workdir} is in use by process {first.pid}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already: the assertion above says why
            os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 1 <= killed_at < 5
    resumed = run_here(*command[1:])  # the lock died with its process
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at epoch {killed_at + 1} of 5" in resumed.stdout
    assert [row["epoch"] for row in json.loads(state.read_text())["history"]] == [1, 2, 3, 4, 5]
    assert json.loads((workdir / "summary.json").read_text())["epochs"] == 5
