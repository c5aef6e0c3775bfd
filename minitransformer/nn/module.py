"""Module and Parameter: how layers hold their weights and find each other.

A Module registers what it is given as attributes: a ``Parameter`` becomes one of its parameters,
another Module one of its sub-modules. Names follow the attribute path, so the query projection of
the first encoder layer's self-attention is ``encoder.layers.0.self_attn.w_q.weight``.

    class Affine(Module):
        def __init__(self, dim):
            super().__init__()
            self.weight = Parameter(mt.ones(dim))     # registered as "weight"
            self.bias = Parameter(mt.zeros(dim))      # registered as "bias"

        def forward(self, x):
            return x * self.weight + self.bias

The training flag lives on each module (``train()`` / ``eval()``), not in global state.
"""

from collections import OrderedDict

from minitransformer import backend
from minitransformer.errors import DTypeError
from minitransformer.tensor import Tensor

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "StateDictError"]


class StateDictError(ValueError):
    """``load_state_dict`` found missing, unexpected or wrongly shaped entries."""


def _first_three(items):
    """"a, b, c and 5 more": a long list named by its head and its length."""
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return ", ".join(items[:3]) + more


class Parameter(Tensor):
    """A Tensor that a Module trains: floating, ``requires_grad=True`` unless frozen."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data)
        if not backend.is_floating(self.dtype):
            raise DTypeError(f"Parameter: needs floating data, got dtype {self.dtype}")
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


class Module:
    """Base class of every layer and model: subclasses set attributes and write ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before setting attributes"
            )
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """Keep a tensor that is state but not trained (e.g. a table of position codes): it
        moves with ``to()`` and is not in ``parameters()`` nor in ``state_dict()``."""
        object.__setattr__(self, name, tensor)
        self._buffers[name] = tensor

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------------- traversal

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module below it, each once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, sub)
                        for child, sub in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self):
        """This module and every module below it."""
        return (module for _, module in self.named_modules())

    def children(self):
        """The direct sub-modules."""
        return iter(self._modules.values())

    def named_parameters(self):
        """(dotted name, Parameter) for every parameter, each once (a shared one under its first
        name)."""
        seen = set()
        for module_name, module in self.named_modules():
            for name, parameter in module._parameters.items():
                if id(parameter) not in seen:
                    seen.add(id(parameter))
                    yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self):
        """Every parameter, each once."""
        return (parameter for _, parameter in self.named_parameters())

    def num_parameters(self, trainable_only=False):
        """How many numbers the parameters hold (shared ones counted once)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ----------------------------------------------------------------------- modes and grads

    def train(self, mode=True):
        """Training mode (dropout active) for this module and all below; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout off); returns self."""
        return self.train(False)

    def zero_grad(self):
        """Forget every parameter's accumulated gradient."""
        for parameter in self.parameters():
            parameter.grad = None

    # ----------------------------------------------------------------------- state

    def state_dict(self):
        """Every parameter, by dotted name, as a NumPy copy (a shared one once, under its first
        name): portable across devices, ready for a checkpoint."""
        return OrderedDict(
            (name, backend.to_numpy(parameter.data).copy())
            for name, parameter in self.named_parameters()
        )

    def load_state_dict(self, state, strict=True):
        """Copy values from ``state`` (name -> array) into the parameters, in place.

        Entries whose shape or dtype differ from the parameter's are never loaded. With
        ``strict=True`` any missing, unexpected, wrongly shaped or wrongly typed entry raises
        StateDictError naming the first three of each kind and their count, and nothing is
        loaded; with ``strict=False`` the
        entries that fit are loaded and the rest are returned as a dict of lists.
        """
        own = self.state_dict()
        problems = {
            "missing": [key for key in own if key not in state],
            "unexpected": [key for key in state if key not in own],
            "wrong shape": [
                f"{key}: expected {own[key].shape}, got {tuple(state[key].shape)}"
                for key in own if key in state and tuple(state[key].shape) != own[key].shape
            ],
            "wrong dtype": [
                f"{key}: expected {own[key].dtype}, got {state[key].dtype}"
                for key in own if key in state and tuple(state[key].shape) == own[key].shape
                and backend.resolve_dtype(state[key].dtype) != own[key].dtype
            ],
        }
        if strict and any(problems.values()):
            listed = "; ".join(f"{len(items)} {kind}: {_first_three(items)}"
                               for kind, items in problems.items() if items)
            raise StateDictError(f"load_state_dict: the state does not fit {type(self).__name__}"
                                 f" ({listed}); nothing was loaded")
        bad = {line.split(":")[0] for line in problems["wrong shape"] + problems["wrong dtype"]}
        parameters = dict(self.named_parameters())
        for key in own:
            if key in state and key not in bad:
                value = state[key].data if isinstance(state[key], Tensor) else state[key]
                target = parameters[key].data
                xp = backend.array_module(target)
                target[...] = xp.asarray(backend.to_numpy(value) if xp.__name__ == "numpy"
                                         else value)
        return problems

    # ----------------------------------------------------------------------- devices, dtypes

    def to(self, target):
        """Move every parameter and buffer, in place: a backend ("numpy"/"cpu", "cupy"/"cuda")
        or a floating dtype ("float32", "float64"). Returns self."""
        if target in ("numpy", "cpu", "cupy", "cuda"):
            convert = _to_backend(target)
        else:
            dtype = backend.resolve_dtype(target)
            if not backend.is_floating(dtype):
                raise DTypeError(f"to: expected a backend name or a floating dtype, got {target!r}")

            def convert(array):
                return array.astype(dtype) if backend.is_floating(array.dtype) else array

        for module in self.modules():
            for tensor in list(module._parameters.values()) + list(module._buffers.values()):
                tensor.data = convert(tensor.data)
                tensor.grad = None
        return self

    def double(self):
        """``to("float64")``: the dtype of gradient checks."""
        return self.to("float64")

    def float(self):
        """``to("float32")``: the dtype of training."""
        return self.to("float32")

    # ----------------------------------------------------------------------- printing

    def extra_repr(self):
        """The settings shown in this module's line of ``repr`` (override in layers)."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ")
                 for name, module in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


def _to_backend(target):
    name = "numpy" if target in ("numpy", "cpu") else "cupy"

    def convert(array):
        with backend.use_backend(name):
            return backend.asarray(array)

    return convert


class ModuleList(Module):
    """A list of modules, registered as ``0``, ``1``, ... (so names read ``layers.0.w_q``)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after another: ``Sequential(a, b)(x) == b(a(x))``."""

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x
