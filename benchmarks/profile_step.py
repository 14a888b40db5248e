"""Where a zoo model's training step spends its time: TensorFlow op types by thread time.

    python benchmarks/profile_step.py resnet20 [--precision mixed_bfloat16] [--steps 10] [--pytorch]

Runs the in-memory step of `make bench` (zoo_rows.InMemoryStep) under the TensorFlow profiler and
sums the op events of TensorFlow's compute threads by op type. The times are thread time: two ops
running at once both count, and an op waiting for the shared intra-op pool counts as busy, so read
them as shares of the step, not as each op's own cost.

`--pytorch` profiles the bench's PyTorch step of the same model instead (reference_torch, under
torch.profiler): ATen ops by their own time on the calling thread, each op counted once however
many threads it uses. Compare the two frameworks' shares, not their milliseconds.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import MODELS  # noqa: E402  (benchmarks/run.py: the models make bench knows)
from zoo.common.errors import ZooError, exits_cleanly, unknown  # noqa: E402
from zoo.common.quiet import import_tensorflow_quietly  # noqa: E402

if TYPE_CHECKING:
    from zoo_rows import InMemoryStep

NOT_OPS = {"Process", "ExecutorDoneCallback"}  # the executor's own events, which contain the ops'


def op_thread_time(step: InMemoryStep, steps: int) -> tuple[collections.Counter, float]:
    """Milliseconds of compute-thread time per step by op type, and the step's wall time in ms."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="zoo_profile_") as logdir:
        tf.profiler.experimental.start(logdir)
        seconds = step.run(steps)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    by_type: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                op_type = names.get(event.metadata_id, "?").split(":")[-1]
                if op_type not in NOT_OPS:
                    by_type[op_type] += event.duration_ps / 1e9 / steps
    return by_type, 1000 * seconds / steps


def torch_op_time(model: str, precision: str, steps: int) -> tuple[collections.Counter, float]:
    """Milliseconds per step by ATen op (its own time), and the step's wall time in ms, for PyTorch."""
    from reference_torch import TorchTrainer
    from torch.profiler import ProfilerActivity, profile

    trainer = TorchTrainer(model, 128, bf16=precision == "mixed_bfloat16")
    trainer.run(10)  # past the first, slower steps
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        seconds = trainer.run(steps)
    by_type = collections.Counter({event.key: event.self_cpu_time_total / 1000 / steps
                                   for event in profiler.key_averages()})
    return by_type, 1000 * seconds / steps


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help=f"one of {', '.join(MODELS)}")
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--pytorch", action="store_true", help="profile the bench's PyTorch step instead")
    args = parser.parse_args(argv)
    if args.model not in MODELS:
        raise ZooError(unknown("benchmark model", args.model, MODELS))
    if args.steps < 1:
        raise ZooError(f"--steps: expected a positive number, received {args.steps}")
    if args.pytorch:
        by_type, wall_ms = torch_op_time(args.model, args.precision, args.steps)
    else:
        import_tensorflow_quietly()
        from zoo_rows import InMemoryStep

        step = InMemoryStep(args.model, 128, precision=args.precision)
        step.run(10)  # past the first, slower steps
        by_type, wall_ms = op_thread_time(step, args.steps)
    total = sum(by_type.values())
    # TensorFlow's Conv2D, Conv2DBackpropInput/Filter; PyTorch's mkldnn_convolution, convolution_backward
    conv = sum(ms for op, ms in by_type.items() if "conv" in op.lower())
    backward = sum(ms for op, ms in by_type.items() if "conv" in op.lower() and ("Backprop" in op or "backward" in op))
    framework = "PyTorch" if args.pytorch else "TensorFlow"
    print(f"{args.model} {args.precision}, {framework}: step {wall_ms:.1f} ms wall ({128 * 1000 / wall_ms:.0f} "
          f"images/s while profiled), {total:.1f} ms of op {'self' if args.pytorch else 'thread'} time")
    print(f"convolutions {conv / total:.1%} of op time: backward {backward / total:.1%}, "
          f"forward {(conv - backward) / total:.1%}")
    for op, ms in by_type.most_common(args.top):
        print(f"{ms:8.2f} ms  {ms / total:6.1%}  {op}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
