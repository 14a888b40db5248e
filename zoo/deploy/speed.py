"""How fast an artifact answers: batch-1 latency (what a server taking one request at a time sees) and
images per second on a batch.

`latency` times single calls of an artifact's `predict` on a batch of one image, after untimed
warm-up calls (the first ones trace, compile and plan memory), until it has `calls` of them or
`seconds` have passed, whichever comes first, and reports the median and the 90th percentile.
evaluate.py, `zoo predict` and benchmarks/serving.py report it.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable

import numpy as np

WARMUP_CALLS = 5
MIN_CALLS = 10


@dataclasses.dataclass(frozen=True)
class Latency:
    """Milliseconds per call of one image: median, 90th percentile, and how many calls they come from."""

    median_ms: float
    p90_ms: float
    calls: int

    def as_json(self) -> dict[str, Any]:
        return {"median_ms": round(self.median_ms, 4), "p90_ms": round(self.p90_ms, 4), "calls": self.calls}


def call_times(predict: Callable[[np.ndarray], Any], images: np.ndarray, calls: int, seconds: float) -> list[float]:
    """Seconds of each timed call of `predict(images)`: up to `calls` of them, fewer if `seconds` run out
    first (never fewer than MIN_CALLS), after WARMUP_CALLS untimed ones."""
    if calls < MIN_CALLS:
        raise ValueError(f"calls: expected at least {MIN_CALLS}, received {calls}")
    for _ in range(WARMUP_CALLS):
        predict(images)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < calls and (len(times) < MIN_CALLS or time.perf_counter() < deadline):
        start = time.perf_counter()
        predict(images)
        times.append(time.perf_counter() - start)
    return times


def latency(predict: Callable[[np.ndarray], Any], image: np.ndarray, calls: int = 200,
            seconds: float = 1.0) -> Latency:
    """The batch-1 latency of `predict` on `image` (one uint8 HxWxC image, or a batch of one)."""
    batch = image if image.ndim == 4 else image[None]
    if len(batch) != 1:
        raise ValueError(f"expected one image, received a batch of {len(batch)}")
    times = call_times(predict, batch, calls, seconds)
    return Latency(1000 * statistics.median(times), 1000 * statistics.quantiles(times, n=10)[-1], len(times))


def images_per_second(predict: Callable[[np.ndarray], Any], batch: np.ndarray, calls: int = 30,
                      seconds: float = 3.0) -> float:
    """Images per second of `predict` on `batch`, from the median call."""
    return len(batch) / statistics.median(call_times(predict, batch, calls, seconds))
