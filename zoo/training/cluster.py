"""This process's place in a TF_CONFIG cluster, read without TensorFlow.

TF_CONFIG is what Kubeflow's TFJob, Ray Train and `python -m zoo launch` set. It is read here,
apart from the strategy (zoo.training.distribute), so that `train.py` refuses a bad one before the
3 s of TensorFlow's import, as it does a bad config.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from zoo.common.errors import ZooError


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a TF_CONFIG cluster: how many workers, and which one it is."""

    workers: int
    index: int  # 0 is the chief: the only worker that writes the run directory

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def read_tf_config(text: str | None) -> Cluster:
    """TF_CONFIG's cluster and task as a Cluster; one worker (index 0) when it is unset.

    A `chief` entry (Kubeflow's TFJob has one) counts as worker 0 and the `worker` entries follow it.
    """
    if not text:
        return Cluster(1, 0)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ZooError(f"TF_CONFIG: expected JSON like {{\"cluster\": {{\"worker\": [...]}}, \"task\": {{\"type\": "
                       f"\"worker\", \"index\": 0}}}}, received {text[:80]!r} ({error.msg})") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ZooError(f"TF_CONFIG: expected an object with 'cluster' and 'task', received {text[:80]!r}")
    chiefs, workers = cluster.get("chief", []), cluster.get("worker", [])
    if not isinstance(chiefs, list) or not isinstance(workers, list) or len(chiefs) > 1 or not chiefs + workers:
        raise ZooError(f"TF_CONFIG: expected a cluster of at most one 'chief' and a list of 'worker' addresses, "
                       f"received {json.dumps(cluster)[:120]}")
    kind, index = task.get("type"), task.get("index")
    members = {"chief": chiefs, "worker": workers}
    if kind not in members:
        raise ZooError(f"TF_CONFIG: task.type: expected 'worker' or 'chief', received {kind!r}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(members[kind]):
        raise ZooError(f"TF_CONFIG: task.index: expected 0 to {len(members[kind]) - 1} (the cluster has "
                       f"{len(members[kind])} {kind} address(es)), received {index!r}")
    return Cluster(len(chiefs) + len(workers), index + len(chiefs) if kind == "worker" else 0)


def this_worker(workdir: str | Path | None) -> Cluster:
    """TF_CONFIG's Cluster for this process; several workers must be given the run directory they share."""
    cluster = read_tf_config(os.environ.get("TF_CONFIG"))
    if cluster.workers > 1 and not workdir:  # checked before the strategy, which waits for the other workers
        raise ZooError(f"--workdir: expected the run directory every one of the {cluster.workers} workers shares "
                       "(a timestamped default would differ between workers), received none")
    return cluster
