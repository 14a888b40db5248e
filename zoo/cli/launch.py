"""`zoo launch --workers N -- EXPERIMENT [zoo train's args]`: a multi-worker cluster on this machine.

Starts N `zoo train` processes on free loopback ports, each with its TF_CONFIG (worker 0 is the
chief), as a cluster manager would on N machines; prefixes their output with `[worker i]`; and
when one fails, stops the others and exits with its status.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from zoo.common.errors import ZooError

STOP_GRACE_SECONDS = 10  # after SIGTERM, before SIGKILL


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on (all held open together, so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(addresses: list[str], index: int) -> str:
    """TF_CONFIG for worker `index` of the cluster of `addresses`, as Kubeflow and Ray Train write it."""
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def _prefix(stream: IO[str], index: int, out: IO[str]) -> None:
    for line in stream:
        out.write(f"[worker {index}] {line}")
        out.flush()


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def describe_status(status: int) -> str:
    if status < 0:
        return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"


def _first_failure(processes: list[subprocess.Popen]) -> tuple[int, int] | None:
    """(index, status) of the first worker, by index, that ended with a non-zero status."""
    return next(((index, process.returncode) for index, process in enumerate(processes)
                 if process.poll() not in (None, 0)), None)


def launch(workers: int, train_args: list[str]) -> int:
    """Runs `zoo train` with `train_args` as `workers` local workers; 0, or the first failing worker's status."""
    if workers < 1:
        raise ZooError(f"--workers: expected a positive number of workers, received {workers}")
    if not train_args:
        raise ZooError("launch: expected an experiment after `--`, e.g. zoo launch --workers 2 -- default, "
                       "received none")
    if "--workdir" not in train_args and not any(arg.startswith("--workdir=") for arg in train_args):
        # every worker must name the same run directory; a default per process would differ by a second
        workdir = Path("runs") / Path(train_args[0]).stem / time.strftime("%Y%m%d-%H%M%S")
        train_args = [*train_args, "--workdir", str(workdir)]
        print(f"launch: run directory {workdir}", flush=True)
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes, threads = [], []
    for index in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(addresses, index), "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen([sys.executable, "-m", "zoo", "train", *train_args], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        processes.append(process)
        for stream, out in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
            threads.append(threading.Thread(target=_prefix, args=(stream, index, out), daemon=True))
            threads[-1].start()
    failure = None
    try:
        while failure is None and any(process.poll() is None for process in processes):
            time.sleep(0.2)
            failure = _first_failure(processes)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    failure = failure or _first_failure(processes)
    if failure:
        index, status = failure
        others = [str(i) for i, process in enumerate(processes) if process.poll() is None]
        _stop(processes)
        print(f"error: worker {index} {describe_status(status)}"
              f"{'; stopped worker ' + ', '.join(others) if others else ''}", file=sys.stderr, flush=True)
    for thread in threads:
        thread.join(timeout=5)
    if not failure:
        return 0
    return failure[1] if failure[1] > 0 else 128 - failure[1]  # a signal's number, as a shell reports it
