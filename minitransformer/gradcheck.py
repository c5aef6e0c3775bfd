"""The numerical gradient checker: proof that a backward matches its forward.

For a function f of tensors, backpropagation gives the analytic gradient. Central differences give
a numerical one, from the forward alone:

    dL/dx_i ≈ (L(x + ε e_i) - L(x - ε e_i)) / 2ε          (error O(ε²))

where L = Σ_k <u_k, f_k(x)> for random upstream gradients u_k. A random u (rather than
``f(x).sum()``, i.e. u = 1) makes every output element count differently, so a backward that mixes
up positions cannot pass by symmetry.

- Everything runs in float64: in float32, ε = 1e-6 is lost to rounding.
- Inputs up to ``max_elements`` are checked element by element; larger ones along ``directions``
  random unit directions d, comparing <grad, d> with (L(x + εd) - L(x - εd)) / 2ε.
- Integer and bool inputs (token ids, masks) are skipped; ``nondiff`` skips floating ones too.
- The shared generator is re-seeded before every forward, so dropout draws the same mask each time.
- The caller's tensors are never changed: inputs are copied, parameters restored exactly.

On a mismatch ``GradcheckError`` names the input or parameter, the worst element, both values, the
errors and the tolerance, and how many elements failed.
"""

import itertools
from dataclasses import dataclass, field

from minitransformer import backend
from minitransformer.autograd import no_grad
from minitransformer.errors import DTypeError, GradcheckError
from minitransformer.tensor import Tensor

__all__ = ["GradcheckReport", "gradcheck", "gradcheck_module"]

FLOAT64 = backend.resolve_dtype("float64")


def _prepare_inputs(function, inputs, nondiff):
    """float64 copies of the inputs; the differentiable ones require grad and are targets."""
    copies, targets = [], []
    for position, value in enumerate(inputs):
        if not isinstance(value, Tensor):
            copies.append(value)
            continue
        data = backend.array_module(value.data).array(value.data, copy=True)
        checked = backend.is_floating(data.dtype) and position not in nondiff
        if backend.is_floating(data.dtype):
            data = data.astype(FLOAT64)
        copy = Tensor._from_array(data, requires_grad=checked)
        copies.append(copy)
        if checked:
            targets.append((f"input {position}", copy))
    return copies, targets


def _outputs(function, result):
    """The floating output tensors of ``result`` (a Tensor or a tuple/list of them)."""
    results = result if isinstance(result, (tuple, list)) else (result,)
    outputs = [r for r in results if isinstance(r, Tensor) and backend.is_floating(r.dtype)]
    if not outputs:
        raise TypeError(f"{function}: the function returned no floating tensor to check")
    for out in outputs:
        if out.dtype != FLOAT64:
            raise DTypeError(f"{function}: an output has dtype {out.dtype}; gradient checks need "
                             "float64 throughout (make parameters and constants float64)")
    return outputs


def _numeric_directional(evaluate, x, direction, upstream, eps):
    """Σ_k <u_k, f_k(x + ε d) - f_k(x - ε d)> / 2ε, with x restored exactly afterwards.

    The outputs are subtracted before they are weighted and summed, so entries that do not move
    (a masked fill of -1e9, say) cancel exactly instead of drowning the difference in rounding.
    """
    original = x.data.copy()
    try:
        x.data[...] = original + eps * direction
        plus = evaluate()
        x.data[...] = original - eps * direction
        minus = evaluate()
    finally:
        x.data[...] = original
    change = sum(float((u * (p - m)).sum()) for u, p, m in zip(upstream, plus, minus))
    return change / (2 * eps)


@dataclass
class GradcheckReport:
    """What a passing check measured: per checked tensor its shape, and the largest absolute
    difference between analytic and numerical derivatives over everything checked. (A failing
    check raises GradcheckError instead, so there is no report of a failure.)"""

    shapes: dict = field(default_factory=dict)
    max_abs_error: float = 0.0
    probes: int = 0

    def add(self, name, shape, error):
        self.shapes[name] = tuple(shape)
        self.max_abs_error = max(self.max_abs_error, error)
        self.probes += 1


def _fail(function, name, x, worst, analytic, numeric, failed, total, atol, rtol, what):
    error = abs(analytic - numeric)
    relative = error / abs(numeric) if numeric else float("inf")
    raise GradcheckError(
        f"{function}: the gradient of {name} (shape {x.shape}) is wrong {what} {worst}: analytic "
        f"{analytic:.6g} vs numeric {numeric:.6g} (abs error {error:.3g}, "
        f"rel error {relative:.3g}; "
        f"tolerance {atol:g} + {rtol:g}·|numeric|); {failed} of {total} checked "
        f"{'elements' if what == 'at index' else 'directions'} fail"
    )


def _compare(function, forward, targets, eps, atol, rtol, max_elements, directions, seed):
    """Run the check of ``forward()`` for every (name, tensor) in ``targets``."""
    saved_state = backend.get_rng_state()
    try:
        backend.manual_seed(seed)
        outputs = _outputs(function, forward())
        rng = backend.local_generator(seed)
        upstream = [
            backend.array_module(out.data).asarray(rng.standard_normal(out.shape))
            for out in outputs
        ]
        for out, u in zip(outputs, upstream):
            if out.requires_grad:
                out.backward(u, retain_graph=True)

        def evaluate():
            backend.manual_seed(seed)
            with no_grad():
                # copies: an output may be a view of the input that is perturbed next
                return [out.data.copy() for out in _outputs(function, forward())]

        report = GradcheckReport()
        for name, x in targets:
            xp = backend.array_module(x.data)
            analytic = x.grad if x.grad is not None else xp.zeros_like(x.data)
            if x.size <= max_elements:
                probes, what = _unit_vectors(x), "at index"
            else:
                probes, what = _random_directions(x, directions, rng), "along random direction"
            _check_probes(function, name, x, analytic, probes, what, evaluate, upstream, eps,
                          atol, rtol, report)
    finally:
        backend.set_rng_state(saved_state)
    return report


def _unit_vectors(x):
    """(index, e_index) for every element of x: the per-element check."""
    xp = backend.array_module(x.data)
    for index in itertools.product(*(range(n) for n in x.shape)):
        unit = xp.zeros(x.shape, dtype=x.dtype)
        unit[index] = 1
        yield index, unit


def _random_directions(x, count, rng):
    """(k, d_k) for ``count`` random unit directions: the check of large inputs."""
    xp = backend.array_module(x.data)
    for k in range(count):
        d = rng.standard_normal(x.shape)
        yield k, xp.asarray(d / (d**2).sum() ** 0.5)


def _check_probes(function, name, x, analytic, probes, what, evaluate, upstream, eps, atol,
                  rtol, report):
    """Compare <analytic, d> with the central difference along each probe d; raise on the
    worst failure; add what was checked to ``report``."""
    failures, checked, worst = 0, 0, None
    for label, direction in probes:
        numeric = _numeric_directional(evaluate, x, direction, upstream, eps)
        value = float((analytic * direction).sum())
        excess = abs(value - numeric) - (atol + rtol * abs(numeric))
        checked += 1
        report.add(name, x.shape, abs(value - numeric))
        if excess > 0:
            failures += 1
            if worst is None or excess > worst[0]:
                worst = (excess, label, value, numeric)
    if failures:
        _, label, value, numeric = worst
        _fail(function, name, x, label, value, numeric, failures, checked, atol, rtol, what)


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, nondiff=(), max_elements=200,
              directions=10, seed=0, report=False):
    """Check the gradients of ``fn(*inputs)`` against central differences; True when they agree.

    Floating tensor inputs are copied to float64 and checked (except positions in ``nondiff``);
    integer/bool tensors and non-tensors are passed through unchanged. Raises GradcheckError
    naming the input, the worst element, and analytic vs numeric values on a mismatch.
    ``report=True`` returns a GradcheckReport (shapes checked, largest error) instead of True.

    >>> x = mt.randn(3, 4, dtype="float64")
    >>> mt.gradcheck(lambda t: (t * t).sum(axis=1), x)
    True
    """
    copies, targets = _prepare_inputs("gradcheck", inputs, set(nondiff))
    result = _compare("gradcheck", lambda: fn(*copies), targets, eps, atol, rtol, max_elements,
                      directions, seed)
    return result if report else True


def gradcheck_module(module, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, nondiff=(),
                     max_elements=200, directions=10, seed=0, forward=None, report=False):
    """Check the gradients of ``module(*inputs)`` for its inputs and every parameter, by name.

    The parameters must be float64 (gradient checks run in float64); they are perturbed in place
    and restored exactly, and their ``.grad`` is put back as it was. ``forward``, a function of
    the inputs, replaces ``module(*inputs)`` when only part of the output should count (e.g.
    the outputs at real tokens, not at padding).
    """
    copies, targets = _prepare_inputs("gradcheck_module", inputs, set(nondiff))
    parameters = list(module.named_parameters())
    for name, parameter in parameters:
        if parameter.dtype != FLOAT64:
            raise DTypeError(f"gradcheck_module: parameter {name!r} has dtype {parameter.dtype}; "
                             "gradient checks need float64 parameters")
    saved_grads = [parameter.grad for _, parameter in parameters]
    try:
        for _, parameter in parameters:
            parameter.grad = None
        targets += [(f"parameter {name!r}", parameter) for name, parameter in parameters]
        run = forward if forward is not None else module
        result = _compare("gradcheck_module", lambda: run(*copies), targets, eps, atol, rtol,
                          max_elements, directions, seed)
        return result if report else True
    finally:
        for (_, parameter), grad in zip(parameters, saved_grads):
            parameter.grad = grad
