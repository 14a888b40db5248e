"""Which tf.distribute strategy a run trains under.

`train.distribute` resolves here: `none` (one device), `mirrored` (every local GPU, or the
logical CPUs that ZOO_CPU_DEVICES asks for), `multi_worker` (one process per worker, the cluster
that TF_CONFIG describes, read by zoo.training.cluster), and `auto`, which picks multi_worker when
TF_CONFIG names more than one worker, mirrored when more than one GPU is visible, else none. The
strategy must exist before TensorFlow starts its runtime, so the trainer resolves it first. A
worker whose peers are gone stops here with one line.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Iterator

import tensorflow as tf

from zoo.common.errors import ZooError
from zoo.training.cluster import Cluster

CPU_DEVICES = "ZOO_CPU_DEVICES"  # split the CPU into N logical devices, to try `mirrored` without GPUs
# A worker that dies leaves the others waiting in an all-reduce; past this they stop with an error
# rather than hang. Generous against a slow step, well under the minute a cluster should take to notice.
COLLECTIVE_TIMEOUT_SECONDS = 45


@dataclasses.dataclass(frozen=True)
class Distribution:
    """The resolved strategy, with what the run prints and records in summary.json."""

    strategy: tf.distribute.Strategy
    name: str
    cluster: Cluster
    global_batch_size: int

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def record(self) -> dict[str, Any]:
        return {"strategy": self.name, "workers": self.cluster.workers, "replicas": self.replicas,
                "global_batch_size": self.global_batch_size}

    def describe(self) -> str:
        return (f"distribute: {self.name}, {self.cluster.workers} worker(s), {self.replicas} replica(s), global batch "
                f"{self.global_batch_size} ({self.global_batch_size // self.replicas} per replica)")


def split_cpu(devices: int) -> None:
    """Makes the CPU appear as `devices` logical devices (before TensorFlow's runtime starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or ()) == devices:
        return  # a second run in the same process: already split, and TensorFlow refuses to be told again
    if devices < 1:
        raise ValueError(devices)
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)


def resolve_distribution(setting: str, global_batch_size: int, cluster: Cluster,
                         environ: dict[str, str] | None = None) -> Distribution:
    """train.distribute -> the strategy to train under (created here, before anything else in TensorFlow).

    Under multi_worker this waits until every worker of `cluster` (zoo.training.cluster) has started.
    """
    environ = os.environ if environ is None else environ
    if environ.get(CPU_DEVICES):
        try:
            split_cpu(int(environ[CPU_DEVICES]))
        except ValueError:
            raise ZooError(f"{CPU_DEVICES}: expected a positive number of logical CPU devices, received "
                           f"{environ[CPU_DEVICES]!r}") from None
    gpus = tf.config.list_physical_devices("GPU")
    name = setting
    if setting == "auto":
        name = "multi_worker" if cluster.workers > 1 else "mirrored" if len(gpus) > 1 else "none"
    if cluster.workers > 1 and name != "multi_worker":
        raise ZooError(f"train.distribute: TF_CONFIG names {cluster.workers} workers, which only multi_worker (or "
                       f"auto) trains together; received {setting!r}")
    if name == "multi_worker":
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=COLLECTIVE_TIMEOUT_SECONDS)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    elif name == "mirrored":
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(None if gpus or len(cpus) < 2 else cpus)
    else:
        strategy = tf.distribute.get_strategy()  # the default: one device, no replicas to synchronise
    if global_batch_size % strategy.num_replicas_in_sync:
        raise ZooError(f"train.batch_size: expected a multiple of the {strategy.num_replicas_in_sync} replicas "
                       f"(each takes an equal share of the global batch), received {global_batch_size}")
    return Distribution(strategy, name, cluster, global_batch_size)


class WorkerLost(ZooError):
    """Another worker of a multi-worker run stopped (killed, crashed, unreachable); this one stops too."""

    exit_code = 1


# What a collective raises when a peer is gone: its socket closed, heartbeats stopped, or the timeout passed.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
               tf.errors.CancelledError)
# Lines of such an error that say where, not why: the graph's node and Python frames, gRPC details.
_NOT_THE_CAUSE = ("Graph execution error", "Detected at node", "File ", "Additional GRPC", ":UNKNOWN", "[[")


def peer_error_cause(error: tf.errors.OpError) -> str:
    """The line of a collective's error that says what happened (e.g. 'Collective ops is aborted by: ...')."""
    lines = [re.sub(r"^\{\{.*?\}\}\s*", "", line.strip()) for line in str(error.message).splitlines()]
    return next((line for line in lines if line and not line.startswith(_NOT_THE_CAUSE)), "no reason given")[:200]


@contextlib.contextmanager
def stopping_if_a_worker_is_lost(distribution: Distribution, run_dir: Path) -> Iterator[None]:
    """Turns a collective's failure in a multi-worker run into WorkerLost: one line, and how to resume."""
    try:
        yield
    except PEER_ERRORS as error:
        if distribution.cluster.workers == 1:
            raise
        raise WorkerLost(f"worker {distribution.cluster.index} stopped: another worker of the "
                         f"{distribution.cluster.workers} is gone ({peer_error_cause(error)}); rerun the same "
                         f"command on every worker to resume {run_dir} from its last finished epoch") from None
