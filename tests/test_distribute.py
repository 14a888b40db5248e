"""Training under tf.distribute on CPU: mirrored over 2 logical CPUs, multi_worker as 2 local processes.

The equivalence test is the proof that matters: 2 workers, each training on its half of every
global batch, end with the weights one process gets from the whole batches, so gradients are
averaged over the global batch and no example is trained twice or skipped.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import RECIPE, ROOT, assert_one_line_error, run

from zoo.cli.launch import free_ports, tf_config
from zoo.common.errors import ZooError
from zoo.experiment import load_experiment
from zoo.training.cluster import read_tf_config
from zoo.training.trainer import WORKERS_DIR, train

DEFAULT = "configs/experiments/default.yaml"
SHORT = ["train.epochs=2", "train.steps_per_epoch=4", "train.eval_steps=2", "train.batch_size=32"]
# LeNet-5 with batch norm after both convolutions, so synchronized batch norm is part of the proof
WITH_BATCH_NORM = "model.layers={conv1: {norm: batch}, conv2: {norm: batch}}"


def sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def launch(workers: int, *train_args: str, timeout: int = 300):
    return run("-m", "zoo", "launch", "--workers", str(workers), "--", *train_args, timeout=timeout)


def test_tf_config_is_read_as_cluster_managers_write_it():
    assert read_tf_config(None).workers == 1
    ray = read_tf_config(tf_config(["a:1", "b:2", "c:3"], 2))
    assert (ray.workers, ray.index, ray.is_chief) == (3, 2, False)
    tfjob = {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", "index": 0}}
    assert (read_tf_config(json.dumps(tfjob)).workers, read_tf_config(json.dumps(tfjob)).index) == (3, 1)
    tfjob["task"] = {"type": "chief", "index": 0}
    assert read_tf_config(json.dumps(tfjob)).is_chief
    for bad, fragment in [('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "task.type"),
                          ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', "cluster"),
                          ('[1, 2]', "'cluster' and 'task'")]:
        with pytest.raises(ZooError, match=fragment):
            read_tf_config(bad)


@pytest.mark.parametrize("replicas", [2, 4])  # 4: two replicas per worker, taking consecutive elements
def test_each_input_pipeline_takes_its_replicas_slices_of_every_global_batch(replicas):
    import tensorflow as tf

    from zoo.data.pipeline import pipeline
    from zoo.data.preprocess import Preprocessing
    from zoo.data.sources import Split
    from zoo.experiment import DataConfig

    count, batch, steps = 40, 8, 5
    images = np.zeros((count, 1, 1, 1), np.uint8)
    split = Split("train", count, tf.data.Dataset.from_tensor_slices((images, np.arange(count))))
    common = dict(config=DataConfig(cache="memory"), preprocessing=Preprocessing((1, 1), 1, (0.0,), (1.0,)),
                  num_classes=count, batch_size=batch, training=True, seed=3)

    def labels(dataset, batches):
        return [labels.numpy().argmax(1).tolist() for _, labels in dataset.take(batches)]

    whole = labels(pipeline(split, **common), steps)
    local = replicas // 2
    shares = [labels(pipeline(split, **common, input_context=tf.distribute.InputContext(2, worker, replicas)),
                     steps * local) for worker in range(2)]
    for step in range(steps):
        replica_batches = [shares[worker][step * local + r] for worker in range(2) for r in range(local)]
        assert sum(replica_batches, []) == whole[step]


@pytest.mark.parametrize("tf_config_text, fragments", [
    ('{"cluster": {"worker": ["127.0.0.1:1"]', ("TF_CONFIG", "expected JSON")),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker"}}',
     ("TF_CONFIG: task.index", "expected 0 to 1", "received None")),
    ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 2}}',
     ("TF_CONFIG: task.index", "received 2")),
], ids=["unparsable", "no-index", "index-out-of-range"])
def test_bad_tf_config_is_one_line(tmp_path, tf_config_text, fragments):
    result = run("train.py", DEFAULT, "--workdir", str(tmp_path), env={"TF_CONFIG": tf_config_text})
    assert_one_line_error(result, *fragments)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_several_workers_without_a_shared_workdir_is_one_line_not_a_wait_for_the_others():
    result = run("train.py", DEFAULT, env={"TF_CONFIG": tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1)}, timeout=60)
    assert_one_line_error(result, "--workdir: expected the run directory every one of the 2 workers shares")


def test_mirrored_on_two_logical_cpus_with_every_recipe_key(tmp_path, patterns_dir):
    result = run("train.py", DEFAULT, *sets(*SHORT, "train.epochs=1", f"data.data_dir={patterns_dir}",
                                              "train.distribute=mirrored", "export.saved_model=false", *RECIPE),
                 "--workdir", str(tmp_path), env={"ZOO_CPU_DEVICES": "2"})
    assert result.returncode == 0, result.stderr
    assert "distribute: mirrored, 1 worker(s), 2 replica(s), global batch 32 (16 per replica)" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["distribute"] == {"strategy": "mirrored", "workers": 1, "replicas": 2, "global_batch_size": 32}
    assert summary["metrics"]["eval_accuracy_tta_flip"] is not None


def test_two_workers_reach_the_weights_of_one_process_on_the_same_global_batches(tmp_path, patterns_dir):
    # SGD, not the default Adam, whose step barely changes if the gradients are off by a constant factor;
    # a rate low enough that 4 steps stay stable (at 0.1 they diverge and magnify rounding differences)
    overrides = [*SHORT, "train.epochs=1", f"data.data_dir={patterns_dir}", "train.sync_batch_norm=true",
                 "train.optimizer.name=sgd", "train.optimizer.learning_rate=0.02", "train.schedule.warmup_epochs=0",
                 WITH_BATCH_NORM]  # the default experiment has no augmentation
    result = launch(2, DEFAULT, *sets(*overrides), "--workdir", str(tmp_path / "workers"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the chief alone records and exports, into the run directory, once; the workers' saves are gone
    run_dir = tmp_path / "workers"
    assert [path.parent for path in tmp_path.rglob("saved_model.pb")] == [run_dir / "saved_model"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["distribute"] == {"strategy": "multi_worker", "workers": 2, "replicas": 2, "global_batch_size": 32}
    assert [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]] == ["1"]
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert not (run_dir / WORKERS_DIR).exists()
    train(load_experiment(ROOT / DEFAULT, [*overrides, "train.distribute=none", "export.saved_model=false"]),
          tmp_path / "single")
    workers = keras.saving.load_model(tmp_path / "workers" / "model.keras")
    single = keras.saving.load_model(tmp_path / "single" / "model.keras")
    assert any(isinstance(layer, keras.layers.BatchNormalization) and layer.synchronized for layer in workers.layers)
    assert len(workers.weights) == len(single.weights)
    difference = max(np.abs(a - b).max() / np.abs(b).max()
                     for a, b in zip(workers.get_weights(), single.get_weights()))
    print(f"2 workers vs 1 process: max relative weight difference {difference:.2e}")
    assert difference < 1e-4


def _start_worker(index: int, addresses: list[str], args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CONFIG": tf_config(addresses, index), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


@pytest.mark.slow  # four TensorFlow processes: 80-87 s of `make test` on the Zen 3 (45 s alone)
def test_a_killed_worker_stops_the_other_within_a_minute_and_a_relaunch_resumes_to_one_saved_model(
        tmp_path, patterns_dir):
    # The relaunch is also this slow test's run of two workers with every recipe key (make test has them
    # under mirrored, and two workers' records and export in the equivalence test): each launch of two
    # workers costs two TensorFlow imports. 100 steps with every recipe key took 6 s an epoch on the Zen 3
    # (150 took 9 s), alone: the time there is to kill a worker mid-epoch.
    args = [DEFAULT, *sets(*SHORT, "train.steps_per_epoch=100", f"data.data_dir={patterns_dir}", *RECIPE),
            "--workdir", str(tmp_path / "run")]
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    workers = [_start_worker(index, addresses, args, logs[index]) for index in range(2)]
    try:
        deadline = time.monotonic() + 240
        while "Epoch 2/2" not in logs[0].read_text() and time.monotonic() < deadline:
            assert workers[0].poll() is None, logs[0].read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1)  # mid-epoch: the first is checkpointed, the second under way
        workers[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        status = workers[0].wait(timeout=90)
        stopped = time.monotonic() - killed
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    print(f"the surviving worker stopped {stopped:.1f} s after the other was killed")
    output = logs[0].read_text()
    assert status == 1 and stopped < 60, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert [line for line in output.splitlines() if line.startswith("error:")] == [
        next(line for line in output.splitlines() if "another worker of the 2 is gone" in line)]
    assert "rerun the same command on every worker to resume" in output
    assert (tmp_path / "run" / WORKERS_DIR / "1").is_dir()  # a SIGKILLed worker cannot remove its saves...

    resumed = launch(2, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "[worker 0] resuming" in resumed.stdout and "at epoch 2 of 2" in resumed.stdout
    assert "[worker 1] resuming" in resumed.stdout and "Epoch 1/2" not in resumed.stdout
    assert "[worker 0] distribute: multi_worker, 2 worker(s), 2 replica(s)" in resumed.stdout
    assert "[worker 1] Epoch 2/2" in resumed.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["distribute"] == {"strategy": "multi_worker", "workers": 2, "replicas": 2, "global_batch_size": 32}
    assert summary["epochs"] == 2 and summary["metrics"]["eval_accuracy"] is not None
    assert summary["metrics"]["eval_accuracy_tta_flip"] is not None
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"] and "eval_accuracy" in lines[0]
    assert list((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    assert [path.parent for path in tmp_path.rglob("saved_model.pb")] == [tmp_path / "run" / "saved_model"]
    assert not (tmp_path / "run" / WORKERS_DIR).exists()  # ...its restart reuses and then removes them


def test_launch_stops_at_the_first_failing_worker_with_its_status(tmp_path):
    result = launch(2, "no-such-experiment.yaml", "--workdir", str(tmp_path))
    assert result.returncode == 2
    # Whichever worker fails first is named; the other has failed too or is stopped (the config error
    # comes before TensorFlow's import, so the first can fail while the second is still starting).
    first = re.fullmatch(r"error: worker ([01]) exited with status 2(; stopped worker ([01]))?",
                         result.stderr.splitlines()[-1])
    assert first, result.stderr
    assert f"[worker {first[1]}] error: no-such-experiment.yaml: file not found" in result.stderr
    other = "1" if first[1] == "0" else "0"
    assert first[3] == other or f"[worker {other}] error:" in result.stderr, result.stderr
