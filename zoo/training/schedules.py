"""Learning-rate schedules: constant, step, cosine and one-cycle, each with linear warm-up.

One serializable Keras schedule, so a checkpoint restores it with the optimizer and a resumed
run continues on the same curve.
"""
from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`kind` in constant | step | cosine | one_cycle, as a function of the optimizer step."""

    def __init__(self, kind: str, base_rate: float, total_steps: int, warmup_steps: int = 0,
                 boundaries: tuple[int, ...] = (), gamma: float = 0.1):
        if kind not in ("constant", "step", "cosine", "one_cycle"):
            raise ValueError(f"kind must be constant, step, cosine or one_cycle. Received: kind={kind!r}")
        if kind == "one_cycle" and not warmup_steps:
            warmup_steps = int(0.3 * total_steps)  # the usual 30% rise of one-cycle
        self.kind, self.base_rate, self.total_steps = kind, base_rate, max(int(total_steps), 1)
        self.warmup_steps, self.boundaries, self.gamma = int(warmup_steps), tuple(boundaries), gamma

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        rise = ops.minimum(1.0, (step + 1.0) / warmup) if self.warmup_steps else 1.0
        progress = ops.clip((step - self.warmup_steps) / float(max(self.total_steps - self.warmup_steps, 1)), 0, 1)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        if self.kind == "constant":
            factor = rise
        elif self.kind == "cosine":
            factor = rise * cosine
        elif self.kind == "step":
            passed = sum(ops.cast(step >= b, "float32") for b in self.boundaries) if self.boundaries else 0.0
            factor = rise * ops.power(self.gamma, passed)
        else:  # one_cycle: from base/25 up to base, then cosine down to base/1e4
            up = 1 / 25 + (1 - 1 / 25) * ops.minimum(1.0, step / warmup)
            down = 1e-4 + (1 - 1e-4) * cosine
            factor = ops.where(step < self.warmup_steps, up, down)
        return self.base_rate * factor

    def get_config(self) -> dict:
        return {"kind": self.kind, "base_rate": self.base_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "boundaries": list(self.boundaries), "gamma": self.gamma}
