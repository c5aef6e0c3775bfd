"""The backend: module lookup, backends, dtypes, the shared generator, device mixing."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import backend
from minitransformer.errors import BackendUnavailableError, DeviceMismatchError, DTypeError


def test_array_module_is_numpy_for_numpy_arrays_and_scalars():
    assert backend.array_module(np.ones(2), 3.0, None) is np


def test_numpy_is_always_available():
    assert "numpy" in mt.available_backends()
    assert mt.get_backend() == "numpy"


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        mt.set_backend("torch")


@pytest.mark.skipif("cupy" in backend.available_backends(), reason="CuPy works here")
def test_asking_for_cupy_without_it_says_how_to_install():
    with pytest.raises(BackendUnavailableError, match=r"pip install \"minitransformer\[gpu\]\""):
        mt.set_backend("cupy")
    assert mt.get_backend() == "numpy"


def test_use_backend_restores_the_previous_backend():
    with mt.use_backend("numpy"):
        assert mt.get_backend() == "numpy"
    assert mt.get_backend() == "numpy"


def test_default_dtype_must_be_floating():
    mt.set_default_dtype("float64")
    assert mt.get_default_dtype() == np.float64
    with pytest.raises(DTypeError, match="expected a floating dtype, got int32"):
        mt.set_default_dtype("int32")


def test_manual_seed_validates():
    with pytest.raises(ValueError, match="non-negative int"):
        mt.manual_seed(-1)


def test_rng_state_round_trips():
    mt.manual_seed(7)
    state = backend.get_rng_state()
    first = mt.randn(4).numpy()
    backend.set_rng_state(state)
    np.testing.assert_array_equal(first, mt.randn(4).numpy())


def test_to_numpy_and_device_of():
    array = np.ones(3)
    assert backend.to_numpy(array) is array
    assert backend.device_of(array) == "cpu"
    with pytest.raises(TypeError, match="expected a NumPy or CuPy array, got list"):
        backend.device_of([1, 2])


class _OtherDeviceArray(np.ndarray):
    """A NumPy array that claims to live on a GPU: stands in for CuPy on a CPU-only machine."""


def test_mixing_devices_raises_an_error_naming_both(monkeypatch):
    real = backend.device_of
    monkeypatch.setattr(
        backend, "device_of",
        lambda a: "cuda:0" if isinstance(a, _OtherDeviceArray) else real(a),
    )
    on_gpu = mt.Tensor._from_array(np.ones((2, 3), dtype=np.float32).view(_OtherDeviceArray))
    with pytest.raises(DeviceMismatchError, match=r"cpu \(shape \(2, 3\)\) and cuda:0"):
        mt.ones(2, 3) + on_gpu
    with pytest.raises(DeviceMismatchError, match="two devices"):
        mt.ones(3, 2) @ on_gpu.reshape(2, 3)


def test_scatter_add_adds_repeated_indices():
    target = np.zeros(3)
    backend.scatter_add(target, np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(target, [4.0, 0.0, 2.0])


def _draws_after(seed, skip, count):
    rng = np.random.default_rng(seed)
    rng.random(skip)
    return rng.random(count)


def test_recorded_draws_replay_on_the_cpu_and_leave_the_stream_as_without():
    mt.manual_seed(0)
    with backend.recorded_draws(np) as record:
        first = backend.generator(np).random(5)
    np.testing.assert_array_equal(first, _draws_after(0, 0, 5))  # recording changes nothing
    backend.generator(np).random(3)
    with backend.replayed_draws(record):
        np.testing.assert_array_equal(backend.generator(np).random(5), first)
    # the replay left the stream where it was: 5 + 3 drawn, the next three follow
    np.testing.assert_array_equal(backend.generator(np).random(3), _draws_after(0, 8, 3))


def test_recorded_draws_on_a_gpu_draw_from_a_seeded_generator_and_replay_it(monkeypatch):
    """CuPy's generator states cannot be copied: the block draws from a generator seeded with
    one number from the shared one. A stand-in module whose default_rng is NumPy's runs that
    branch on the CPU."""
    fake_xp = type("FakeCupy", (), {"random": type("R", (), {
        "default_rng": staticmethod(np.random.default_rng)})})()
    monkeypatch.setattr(backend, "_import_cupy", lambda: fake_xp)
    monkeypatch.setitem(backend._state, "cupy_generator", None)  # put back after the test
    mt.manual_seed(0)
    with backend.recorded_draws(fake_xp) as record:
        inside = backend.generator(fake_xp).random(4)
    assert record[0] == "cupy"
    # the shared generator (seed 0) gave one number for the seed, and goes on from there
    np.testing.assert_array_equal(backend.generator(fake_xp).random(2), _draws_after(0, 1, 2))
    with backend.replayed_draws(record):
        np.testing.assert_array_equal(backend.generator(fake_xp).random(4), inside)
    np.testing.assert_array_equal(backend.generator(fake_xp).random(2), _draws_after(0, 3, 2))
