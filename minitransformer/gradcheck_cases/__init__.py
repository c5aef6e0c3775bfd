"""The registry of gradient-check cases: every Function and every Module is proven by one.

Each case names the classes it exercises (``covers``) and builds a function or a module with
float64 inputs. The test suite runs every case and fails when a Function or Module subclass is
covered by none; the CLI's ``gradcheck`` command prints the same cases as a table.

The cases live in ``ops.py`` (primitive ops) and ``modules.py`` (layers and models).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from minitransformer import backend
from minitransformer.autograd import Function
from minitransformer.gradcheck import gradcheck, gradcheck_module
from minitransformer.tensor import Tensor

__all__ = [
    "CASES",
    "GradcheckCase",
    "function_classes",
    "module_classes",
    "register",
    "sample",
]


@dataclass(frozen=True)
class GradcheckCase:
    """One gradient check: ``build()`` returns ``(fn_or_module, inputs)``, or for a module
    ``(module, inputs, forward)``; ``options`` go to the checker (tolerances, ``nondiff``,
    ``max_elements``)."""

    name: str
    covers: tuple
    build: Callable
    options: dict = field(default_factory=dict)

    def run(self):
        """Build and check; a GradcheckReport on success, GradcheckError on a mismatch."""
        from minitransformer.nn.module import Module

        target, inputs, *forward = self.build()
        if isinstance(target, Module):
            forward = forward[0] if forward else None
            return gradcheck_module(target, *inputs, forward=forward, report=True,
                                    **self.options)
        return gradcheck(target, *inputs, report=True, **self.options)


CASES = []


def register(name, covers, **options):
    """Decorator: add the decorated ``build`` function to CASES."""

    def add(build):
        CASES.append(GradcheckCase(name, tuple(covers), build, options))
        return build

    return add


def _subclasses(base):
    found, stack = [], list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("minitransformer."):
            found.append(cls)
    return sorted(set(found), key=lambda cls: (cls.__module__, cls.__name__))


def function_classes():
    """Every Function subclass defined in the package: what the registry must cover."""
    return _subclasses(Function)


def module_classes():
    """Every Module subclass defined in the package (importing minitransformer.nn)."""
    from minitransformer.nn.module import Module

    return _subclasses(Module)


def sample(*shape, low=None, high=None, seed=0):
    """A float64 tensor of standard normals (or uniforms in [low, high)), reproducible by seed."""
    rng = backend.local_generator(seed)
    values = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
    return Tensor(values, dtype="float64")


# The case files register themselves on import.
from minitransformer.gradcheck_cases import modules, ops  # noqa: E402, F401
