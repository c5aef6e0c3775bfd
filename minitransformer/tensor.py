"""The Tensor: a backend array plus what autograd needs (``requires_grad``, ``grad``, ``creator``).

A Tensor wraps ``data``, a NumPy or CuPy array. Every operation on tensors is a Function (see
``autograd.py`` and ``ops/``). This file holds the data and what autograd records; the operators
and op methods (``x + y``, ``x.exp()``, ``x.sum()``, ``x.backward()``) are the functional ops
themselves, attached to the class in one table in ``tensor_methods.py``, so ``x.exp()``,
``mt.exp(x)`` and ``x ** 2`` all run the same code.

Creation follows NumPy's and PyTorch's habits:

- ``tensor(data)`` copies ``data``; a floating array keeps its dtype, Python numbers and lists of
  floats take the default dtype (float32), integer data stays integer (int64), booleans stay bool;
- ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ``rand`` make new tensors on the current
  backend; ``randn``/``rand`` draw from the one seeded generator (``manual_seed``).

Only floating tensors can require grad.
"""

from minitransformer import backend
from minitransformer.errors import DTypeError

__all__ = [
    "Tensor",
    "arange",
    "full",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "tensor",
    "zeros",
    "zeros_like",
]


def _check_can_require_grad(function, dtype):
    if not backend.is_floating(dtype):
        raise DTypeError(
            f"{function}: only floating-point tensors can require grad, got dtype {dtype} "
            "(token ids and masks are integer or bool and never need gradients)"
        )


def _default_dtype_for(data):
    """The dtype ``tensor(data)`` gives Python data: floats take the default dtype."""
    if type(data) is float:  # a Python float; a NumPy float64 number keeps its dtype
        return backend.get_default_dtype()
    if isinstance(data, (list, tuple)):
        probe = backend.asarray(data, copy=False)
        if backend.is_floating(probe.dtype):
            return backend.get_default_dtype()
    return None


class Tensor:
    """An n-dimensional array that can record the operations applied to it, for backward.

    Attributes:
        data: the backend array (numpy.ndarray or cupy.ndarray).
        grad: dL/d(this tensor), a backend array of ``data``'s shape and dtype; None before
            backward. Leaf tensors accumulate it across backward calls.
        requires_grad: whether operations on this tensor are recorded.
        creator: the graph node (``autograd.Context``) that produced this tensor; None for leaves.
    """

    __slots__ = ("data", "grad", "_requires_grad", "creator", "retains_grad", "__weakref__")
    __array_ufunc__ = None  # numpy_array + tensor calls Tensor.__radd__ instead of looping

    def __init__(self, data, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is None:
            dtype = _default_dtype_for(data)
        if dtype is not None:
            dtype = backend.resolve_dtype(dtype)
        self.data = backend.asarray(data, dtype=dtype)
        if self.data.dtype.kind not in "biuf":
            raise DTypeError(f"tensor: data of dtype {self.data.dtype} ({_kind_name(self.data)}"
                             ") cannot be a tensor; a tensor holds numbers: bool, int or float")
        self.grad = None
        self.creator = None
        self.retains_grad = False
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _from_array(cls, array, requires_grad=False, creator=None):
        """Wrap a backend array without copying or checking (for ops)."""
        out = cls.__new__(cls)
        out.data = array
        out.grad = None
        out._requires_grad = requires_grad
        out.creator = creator
        out.retains_grad = False
        return out

    # ----------------------------------------------------------------------- attributes

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value:
            _check_can_require_grad("requires_grad", self.data.dtype)
        self._requires_grad = bool(value)

    @property
    def shape(self):
        """The shape as a tuple of ints, e.g. ``(2, 3)``."""
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        """The number of elements."""
        return int(self.data.size)

    @property
    def device(self):
        """"cpu" for NumPy data, "cuda:N" for CuPy data on GPU N."""
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        """True for tensors no recorded op created (inputs, parameters)."""
        return self.creator is None

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        body = repr(backend.to_numpy(self.data)).replace("array(", "tensor(", 1)
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"creator={self.creator.function.__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if extras:
            body = body[:-1] + ", " + ", ".join(extras) + ")"
        return body

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"bool(): the truth value of a tensor of shape {self.shape} is ambiguous; use "
                ".any() / .all() on .numpy()"
            )
        return bool(self.item())

    # ----------------------------------------------------------------------- conversion

    def numpy(self):
        """A NumPy copy of the data, from any backend (never shares memory with the tensor)."""
        return backend.to_numpy(self.data).copy()

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: the tensor has {self.size} elements (shape {self.shape}); "
                             "item() needs exactly one")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def __array__(self, dtype=None, copy=None):
        """NumPy interop (``np.asarray(t)``, plotting): the values as a NumPy array."""
        array = backend.to_numpy(self.data)
        return array if dtype is None else array.astype(dtype)

    def to(self, target):
        """A copy on another backend: "numpy" (or "cpu") or "cupy" (or "cuda").

        The copy is a new leaf with the same ``requires_grad``: the move is not recorded in the
        graph, so move inputs and parameters before computing with them.
        """
        names = {"numpy": "numpy", "cpu": "numpy", "cupy": "cupy", "cuda": "cupy"}
        if target not in names:
            raise ValueError(f"to: unknown target {target!r}; expected one of {sorted(names)}")
        with backend.use_backend(names[target]):
            moved = Tensor._from_array(backend.asarray(self.data))
        moved.requires_grad = self.requires_grad
        return moved

    def detach(self):
        """A tensor sharing this one's data but cut off from the graph (requires_grad False)."""
        return Tensor._from_array(self.data)

    # ----------------------------------------------------------------------- autograd

    def retain_grad(self):
        """Keep ``.grad`` for this intermediate tensor after backward (leaves always keep it)."""
        self.retains_grad = True
        return self

    def zero_grad(self):
        """Forget the accumulated gradient (``grad = None``)."""
        self.grad = None


# --------------------------------------------------------------------------- creation


def _kind_name(array):
    kinds = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers",
             "M": "dates", "m": "time spans", "V": "raw records"}
    return kinds.get(array.dtype.kind, "not numbers")


def tensor(data, requires_grad=False, dtype=None):
    """A new tensor holding a copy of ``data`` (a number, nested list, array or Tensor).

    Floating arrays keep their dtype; Python floats take the default dtype (float32); integers
    stay integer and bools stay bool.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape_from(function, shape):
    """Accept ``zeros(2, 3)`` and ``zeros((2, 3))`` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(f"{function}: a shape is non-negative ints, got {shape}")
    return tuple(shape)


def _new(function, array, requires_grad):
    if requires_grad:
        _check_can_require_grad(function, array.dtype)
    return Tensor._from_array(array, requires_grad=bool(requires_grad))


def _dtype_or_default(dtype):
    return backend.get_default_dtype() if dtype is None else backend.resolve_dtype(dtype)


def _fill(shape, value, dtype):
    return backend.current_module().full(shape, value, dtype=_dtype_or_default(dtype))


def zeros(*shape, dtype=None, requires_grad=False):
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _new("zeros", _fill(_shape_from("zeros", shape), 0, dtype), requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    """A tensor of ones; ``ones(2, 3)`` or ``ones((2, 3))``."""
    return _new("ones", _fill(_shape_from("ones", shape), 1, dtype), requires_grad)


def full(shape, value, dtype=None, requires_grad=False):
    """A tensor of ``shape`` filled with ``value``."""
    if isinstance(shape, int):
        shape = (shape,)
    return _new("full", _fill(_shape_from("full", (shape,)), value, dtype), requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    """Zeros with ``x``'s shape (and dtype, unless given)."""
    return zeros(x.shape, dtype=x.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    """Ones with ``x``'s shape (and dtype, unless given)."""
    return ones(x.shape, dtype=x.dtype if dtype is None else dtype, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Evenly spaced values in [start, stop), as NumPy's arange.

    All-integer arguments give an int64 tensor; otherwise the default floating dtype.
    """
    if stop is None:
        start, stop = 0, start
    if dtype is None and all(isinstance(v, int) for v in (start, stop, step)):
        dtype = "int64"
    dtype = _dtype_or_default(dtype)
    xp = backend.current_module()
    return _new("arange", xp.arange(start, stop, step, dtype=dtype), requires_grad)


def _random(function, method, shape, dtype, requires_grad):
    shape = _shape_from(function, shape)
    dtype = _dtype_or_default(dtype)
    if not backend.is_floating(dtype):
        raise DTypeError(f"{function}: needs a floating dtype, got {dtype}")
    draw_dtype = dtype if dtype.itemsize >= 4 else backend.resolve_dtype("float32")
    array = getattr(backend.generator(), method)(shape, dtype=draw_dtype).astype(dtype, copy=False)
    return _new(function, array, requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard normal samples from the shared generator; ``randn(2, 3)`` or ``randn((2, 3))``."""
    return _random("randn", "standard_normal", shape, dtype, requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from the shared generator."""
    return _random("rand", "random", shape, dtype, requires_grad)
