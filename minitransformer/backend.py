"""The array backend: NumPy on the CPU or CuPy on a GPU, and the little global state we keep.

This is the ONLY module that imports numpy or cupy. Every op asks ``xp = array_module(x)`` for the
module that owns its input arrays, and then writes ``xp.exp(x)``, ``xp.matmul(a, b)`` and so on, so
one forward serves both backends (Chainer's ``get_array_module`` habit).

The global state lives here and nowhere else:

- the current backend ("numpy" or "cupy"): where new tensors are created;
- the default floating dtype (float32; gradient checks use float64);
- the one random generator every random op draws from (``manual_seed`` seeds it);
- the grad-enabled flag that ``no_grad`` switches off.
"""

import contextlib
import copy

import numpy

from minitransformer.errors import BackendUnavailableError, DeviceMismatchError, DTypeError

__all__ = [
    "array_module",
    "asarray",
    "current_module",
    "available_backends",
    "bytes_to_array",
    "device_of",
    "generator",
    "get_backend",
    "get_default_dtype",
    "get_rng_state",
    "is_floating",
    "is_grad_enabled",
    "load_npz",
    "local_generator",
    "manual_seed",
    "recorded_draws",
    "replayed_draws",
    "resolve_dtype",
    "save_npz",
    "scatter_add",
    "set_backend",
    "set_default_dtype",
    "set_grad_enabled",
    "set_rng_state",
    "spawn_seeds",
    "to_numpy",
    "use_backend",
]

BACKENDS = ("numpy", "cupy")

_state = {
    "backend": "numpy",
    "default_dtype": numpy.dtype(numpy.float32),
    "grad_enabled": True,
    "seed": None,
    "numpy_generator": numpy.random.default_rng(),
    "cupy_generator": None,
}

_INSTALL_HINT = 'install it with: pip install "minitransformer[gpu]" (CUDA 12; [gpu-cuda13] for 13)'


# --------------------------------------------------------------------------- backends and devices


def _import_cupy():
    """Return the cupy module, or raise an error that says why it cannot be used here."""
    try:
        import cupy
    except ImportError as error:
        raise BackendUnavailableError(
            f"set_backend('cupy'): CuPy is not installed ({error}); {_INSTALL_HINT}"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken: cupy raises its own error types
        raise BackendUnavailableError(
            f"set_backend('cupy'): CuPy is installed but no CUDA GPU can be used ({error})"
        ) from None
    if count == 0:
        raise BackendUnavailableError("set_backend('cupy'): CuPy is installed but sees no GPU")
    return cupy


def available_backends():
    """The backends that can run on this machine: always "numpy", plus "cupy" with a GPU."""
    try:
        _import_cupy()
    except BackendUnavailableError:
        return ["numpy"]
    return ["numpy", "cupy"]


def get_backend():
    """The name of the current backend, "numpy" or "cupy"."""
    return _state["backend"]


def set_backend(name):
    """Make ``name`` ("numpy" or "cupy") the backend where new tensors are created."""
    if name not in BACKENDS:
        raise ValueError(f"set_backend: unknown backend {name!r}; expected one of {BACKENDS}")
    if name == "cupy":
        _import_cupy()
    _state["backend"] = name


@contextlib.contextmanager
def use_backend(name):
    """Context manager: ``with use_backend("cupy"): ...`` and the previous backend comes back."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        _state["backend"] = previous


def current_module():
    return _import_cupy() if _state["backend"] == "cupy" else numpy


def device_of(array):
    """"cpu" for a NumPy array or scalar, "cuda:N" for a CuPy array on GPU N."""
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return "cpu"
    if type(array).__module__.startswith("cupy"):
        return f"cuda:{array.device.id}"
    raise TypeError(f"device_of: expected a NumPy or CuPy array, got {type(array).__name__}")


def array_module(*arrays):
    """The module (numpy or cupy) that owns ``arrays``; Python scalars and None are neutral.

    Raises DeviceMismatchError, naming both devices, when the arrays live on different devices.
    """
    for a in arrays:
        if type(a) is not numpy.ndarray:
            break
    else:  # the fast, common case: all NumPy arrays
        return numpy
    devices = {}
    for a in arrays:
        if a is None or isinstance(a, (bool, int, float)):
            continue
        devices.setdefault(device_of(a), a)
    if len(devices) > 1:
        (first, a), (second, b) = list(devices.items())[:2]
        raise DeviceMismatchError(
            f"array_module: arrays on two devices meet in one operation: {first} "
            f"(shape {tuple(a.shape)}) and {second} (shape {tuple(b.shape)}); move one with "
            "Tensor.to(...) so both live on the same device"
        )
    if devices and next(iter(devices)).startswith("cuda"):
        return _import_cupy()
    return numpy


def to_numpy(array):
    """A NumPy array with the values of ``array`` (copied off the GPU for CuPy; not copied for
    NumPy)."""
    if isinstance(array, (numpy.ndarray, numpy.generic)):
        return numpy.asarray(array)
    return array.get()


def asarray(data, dtype=None, copy=True):
    """``data`` (a list, number or array) as an array of the current backend.

    Copied unless ``copy=False``, in which case an array already of the right kind is reused.
    """
    xp = current_module()
    if xp is numpy and type(data).__module__.startswith("cupy"):
        data = data.get()  # off the GPU: NumPy refuses implicit conversion
    if copy:
        return xp.array(data, dtype=dtype)
    return xp.asarray(data, dtype=dtype)


def scatter_add(target, index, values):
    """``target[index] += values``, adding every repeat of a repeated index (in place).

    Plain ``target[index] += values`` keeps only one of the repeats; gradients of gathers (getitem
    with integer arrays, embedding) need all of them.
    """
    if isinstance(target, numpy.ndarray):
        numpy.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


def save_npz(file, arrays):
    """Write NumPy arrays (name -> array) as an uncompressed .npz into an open binary file."""
    numpy.savez(file, **arrays)


def load_npz(path):
    """Every array of an .npz file, read without ever unpickling (``allow_pickle=False``)."""
    with numpy.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def bytes_to_array(data):
    """Bytes as a NumPy uint8 array (to store text, e.g. JSON, inside an .npz)."""
    return numpy.frombuffer(data, dtype=numpy.uint8).copy()


# --------------------------------------------------------------------------- dtypes


def resolve_dtype(dtype):
    """A NumPy dtype from a name ("float32"), a type (numpy.float64) or a dtype."""
    try:
        return numpy.dtype(dtype)
    except TypeError:
        raise DTypeError(f"resolve_dtype: {dtype!r} is not a dtype") from None


def is_floating(dtype):
    """True for float16/32/64 dtypes (the ones that can carry gradients)."""
    return numpy.dtype(dtype).kind == "f"


def get_default_dtype():
    """The dtype of tensors made from Python numbers and of random tensors (float32 at start)."""
    return _state["default_dtype"]


def set_default_dtype(dtype):
    """Set the default floating dtype: "float32" (training) or "float64" (gradient checks)."""
    dtype = resolve_dtype(dtype)
    if not is_floating(dtype):
        raise DTypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _state["default_dtype"] = dtype


# --------------------------------------------------------------------------- randomness


def manual_seed(seed):
    """Seed the one generator that dropout, initialisation and ``randn``/``rand`` draw from."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _state["seed"] = seed
    _state["numpy_generator"] = numpy.random.default_rng(seed)
    _state["cupy_generator"] = None  # made afresh from the seed on first use


def generator(xp=None):
    """The shared generator for arrays of module ``xp`` (default: the current backend's).

    numpy.random.Generator on the CPU, cupy.random.Generator on a GPU; both made from the seed.
    """
    on_gpu = _state["backend"] == "cupy" if xp is None else xp is not numpy
    if not on_gpu:
        return _state["numpy_generator"]
    if _state["cupy_generator"] is None:
        _state["cupy_generator"] = _import_cupy().random.default_rng(_state["seed"])
    return _state["cupy_generator"]


def local_generator(seed):
    """A private NumPy generator, apart from the shared one (for tools that must not touch it)."""
    return numpy.random.default_rng(seed)


def spawn_seeds(seed, n):
    """``n`` independent integer seeds from ``seed`` (NumPy's SeedSequence(seed).spawn(n)): one
    per process of a data-parallel run."""
    children = numpy.random.SeedSequence(seed).spawn(n)
    return [int(child.generate_state(1)[0]) for child in children]


def get_rng_state():
    """A snapshot of the generator, for ``set_rng_state`` (and for checkpoints)."""
    return {
        "seed": _state["seed"],
        "numpy": copy.deepcopy(_state["numpy_generator"].bit_generator.state),
    }


def set_rng_state(state):
    """Restore a snapshot taken by ``get_rng_state``."""
    _state["seed"] = state["seed"]
    rng = numpy.random.default_rng()
    rng.bit_generator.state = copy.deepcopy(state["numpy"])
    _state["numpy_generator"] = rng
    _state["cupy_generator"] = None


@contextlib.contextmanager
def recorded_draws(xp):
    """Run a block whose random draws (dropout masks) ``replayed_draws(record)`` can repeat.

    Yields the record. On the CPU it is the NumPy generator's state before the block, and the
    block draws from the shared generator as usual, so a run is the same with or without the
    record. CuPy's generator states cannot be copied: on a GPU the block draws from a
    generator seeded with one number drawn from the shared one, and that seed is the record.
    """
    if xp is numpy:
        yield ("numpy", copy.deepcopy(_state["numpy_generator"].bit_generator.state))
        return
    seed = int(generator(xp).random(1, dtype="float64")[0] * 2**52)  # as dropout draws
    with _swapped("cupy_generator", _import_cupy().random.default_rng(seed)):
        yield ("cupy", seed)


@contextlib.contextmanager
def replayed_draws(record):
    """Inside, the shared generator makes again the draws made inside ``recorded_draws`` when
    it gave ``record``; after the block it continues from where it stood before it."""
    kind, value = record
    if kind == "numpy":
        replay = numpy.random.default_rng()
        replay.bit_generator.state = copy.deepcopy(value)
    else:
        replay = _import_cupy().random.default_rng(value)
    with _swapped(f"{kind}_generator", replay):
        yield


@contextlib.contextmanager
def _swapped(key, value):
    previous, _state[key] = _state[key], value
    try:
        yield
    finally:
        _state[key] = previous


# --------------------------------------------------------------------------- autograd switch


def is_grad_enabled():
    """True unless inside ``no_grad()``: whether new operations are recorded for backward."""
    return _state["grad_enabled"]


def set_grad_enabled(mode):
    """Switch graph recording on or off; returns the previous setting."""
    previous = _state["grad_enabled"]
    _state["grad_enabled"] = bool(mode)
    return previous
