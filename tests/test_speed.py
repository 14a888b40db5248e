"""zoo.deploy.speed: batch-1 latency and images/s, timed on a predict of known duration."""
import time

import numpy as np
import pytest

from zoo.deploy.speed import MIN_CALLS, WARMUP_CALLS, images_per_second, latency


def sleeper(seconds_per_image: float, calls: list):
    def predict(images):
        calls.append(len(images))
        time.sleep(seconds_per_image * len(images))
    return predict


def test_latency_is_the_median_and_p90_of_one_image_calls():
    calls = []
    measured = latency(sleeper(0.002, calls), np.zeros((8, 8, 3), np.uint8), calls=20)
    assert calls == [1] * (WARMUP_CALLS + 20) and measured.calls == 20
    assert 2.0 <= measured.median_ms <= measured.p90_ms < 20  # sleep() overshoots, never undershoots
    assert set(measured.as_json()) == {"median_ms", "p90_ms", "calls"}
    with pytest.raises(ValueError, match=f"calls: expected at least {MIN_CALLS}, received 1"):
        latency(sleeper(0, []), np.zeros((8, 8, 3), np.uint8), calls=1)


def test_latency_stops_when_its_time_is_spent_but_not_before_the_minimum():
    calls = []
    measured = latency(sleeper(0.01, calls), np.zeros((1, 8, 8, 3), np.uint8), calls=1000, seconds=0.05)
    assert measured.calls == MIN_CALLS
    with pytest.raises(ValueError, match="expected one image, received a batch of 2"):
        latency(sleeper(0, []), np.zeros((2, 8, 8, 3), np.uint8))


def test_images_per_second_counts_the_batch():
    rate = images_per_second(sleeper(0.0005, []), np.zeros((16, 8, 8, 3), np.uint8), calls=10)
    assert 100 < rate <= 2000  # 16 images in >= 8 ms
