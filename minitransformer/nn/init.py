"""Parameter initialisation, in place, drawing from the shared generator (``manual_seed``).

Fans follow our weight layout: a Linear weight is (in_features, out_features), so
fan_in = shape[0] and fan_out = shape[1] (PyTorch's (out, in) layout reads them the other way).

- ``xavier_uniform``: U(-a, a), a = gain · √(6 / (fan_in + fan_out))   (Glorot & Bengio 2010)
- ``xavier_normal``:  N(0, σ²), σ = gain · √(2 / (fan_in + fan_out))
- ``normal``: N(mean, std²);  ``uniform``: U(low, high);  ``zeros``, ``ones``
"""

import math

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.errors import ShapeError

__all__ = [
    "glorot_normal",
    "glorot_uniform",
    "normal",
    "ones",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]


def _fill(tensor, values):
    with no_grad():
        tensor.data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def _fans(function, tensor):
    if tensor.ndim < 2:
        raise ShapeError(f"{function}: needs a weight of at least 2 dims, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[0] * receptive, tensor.shape[1] * receptive


def _generator(tensor):
    return backend.generator(backend.array_module(tensor.data))


def uniform(tensor, low=0.0, high=1.0):
    """Fill with U(low, high); returns the tensor."""
    return _fill(tensor, _generator(tensor).uniform(low, high, tensor.shape))


def normal(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std²); returns the tensor."""
    return _fill(tensor, mean + std * _generator(tensor).standard_normal(tensor.shape))


def xavier_uniform(tensor, gain=1.0):
    """Fill with U(-a, a), a = gain · √(6 / (fan_in + fan_out)); returns the tensor."""
    fan_in, fan_out = _fans("xavier_uniform", tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(tensor, -bound, bound)


def xavier_normal(tensor, gain=1.0):
    """Fill with N(0, σ²), σ = gain · √(2 / (fan_in + fan_out)); returns the tensor."""
    fan_in, fan_out = _fans("xavier_normal", tensor)
    return normal(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def zeros(tensor):
    """Fill with 0; returns the tensor."""
    with no_grad():
        tensor.data[...] = 0
    return tensor


def ones(tensor):
    """Fill with 1; returns the tensor."""
    with no_grad():
        tensor.data[...] = 1
    return tensor


glorot_uniform = xavier_uniform
glorot_normal = xavier_normal
