"""Shared test set-up: quiet TensorFlow, and one-line helpers."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from zoo.models.config import shipped_model_configs  # noqa: E402

MODEL_CONFIGS = shipped_model_configs()


def model_ids():
    return [path.stem for path in MODEL_CONFIGS]


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Keras names and graphs start fresh for each test. Without the full garbage collection that
    clear_session runs by default (0.1-0.9 s a test, 108 s of a 983 s `make test` on the Intel Xeon AMX):
    Python's own collector still frees the cycles as they pile up."""
    yield
    import keras

    keras.backend.clear_session(free_memory=False)


@pytest.fixture(scope="session")
def patterns_dir(tmp_path_factory):
    """One TFDS data_dir for the whole session, so zoo_patterns is generated once."""
    return str(tmp_path_factory.mktemp("tfds"))
