"""Shared test setup: hypothesis profiles, a clean backend state per test, GPU skipping.

The tests mirror the package: ``minitransformer/X.py`` is tested in ``tests/test_X.py``, and a
subpackage in a folder of the same name (``tests/nn``, ``tests/data``, ``tests/explain``, ...).
One stated exception: ``tests/ops`` is laid out by property, not by op file (forward against
NumPy, errors, numerics, in-place backward, properties under hypothesis), each a table over every
op, so that a new op missing from one of them fails a coverage test there; the gradient checks
of every Function and Module are in ``tests/test_gradcheck_registry.py``. ``errors.py``'s classes
are checked where each is raised (``tests/ops/test_errors.py`` and the module tests).
"""

import os

import pytest
from hypothesis import HealthCheck, settings

import minitransformer as mt
from minitransformer import backend

# "ci" is derandomized so a CI run is reproducible; "dev" explores new examples every run.
settings.register_profile(
    "ci", derandomize=True, max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# MINITRANSFORMER_TEST_BACKEND=cupy runs every test on the GPU backend (see benchmarks/gpu_check.sh)
TEST_BACKEND = os.environ.get("MINITRANSFORMER_TEST_BACKEND", "numpy")


@pytest.fixture(autouse=True)
def clean_backend_state():
    """Every test starts on the test backend (NumPy unless MINITRANSFORMER_TEST_BACKEND says),
    float32, grad enabled and seed 0, and leaves it so."""
    mt.set_backend(TEST_BACKEND)
    mt.set_default_dtype("float32")
    backend.set_grad_enabled(True)
    mt.manual_seed(0)
    yield
    assert mt.bugs.active() is None, "a test left a bug of the bug lab switched on"
    mt.set_backend("numpy")
    mt.set_default_dtype("float32")
    backend.set_grad_enabled(True)


def pytest_collection_modifyitems(config, items):
    if "cupy" in mt.available_backends():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
