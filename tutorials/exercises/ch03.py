# %% setup
# Chapter 3's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import re

import numpy as np

import minitransformer as mt
from minitransformer.autograd import Function
from minitransformer.backend import array_module


def gradcheck_failure(fn, *inputs):
    """None when mt.gradcheck(fn, *inputs) passes, else the report of its GradcheckError."""
    try:
        mt.gradcheck(fn, *inputs)
    except mt.GradcheckError as error:
        return str(error)
    return None


# %% exercise ch03-square (3 points)
# Square: a Function subclass for y = x², elementwise: forward(ctx, x) saves what backward
# needs and returns x * x; backward(ctx, grad_out) returns (∂L/∂x,) = (2·g·x,).
# SquareForgotTwo: a subclass of Square whose backward forgets the factor 2 (returns g·x).
# SquareForgotGrad: a subclass of Square whose backward forgets the upstream gradient g
# (returns 2x).
# forgot_two_rel_error: float, the "rel error" that mt.gradcheck(SquareForgotTwo.apply, x)
# reports, for x = mt.randn(3, 4) right after mt.manual_seed(0).
# BEGIN SOLUTION
class Square(Function):
    """y = x²;  dL/dx = 2·g·x"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (2 * grad_out * x,)


class SquareForgotTwo(Square):
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (grad_out * x,)


class SquareForgotGrad(Square):
    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (2 * x,)


mt.manual_seed(0)
x = mt.randn(3, 4)
try:
    mt.gradcheck(SquareForgotTwo.apply, x)
except mt.GradcheckError as error:
    print(error)  # ... (abs error 1.52, rel error 0.5; ...)
forgot_two_rel_error = 0.5
# END SOLUTION

# %% check ch03-square
assert isinstance(Square, type) and issubclass(Square, Function), (
    "Square should be a class derived from Function")
mt.manual_seed(0)
x = mt.randn(3, 4)
assert np.allclose(Square.apply(x).numpy(), x.numpy() ** 2), "Square.apply(x) should compute x²"
failure = gradcheck_failure(Square.apply, x)
assert failure is None, f"Square fails mt.gradcheck: {failure}\nIts backward should be 2·g·x"
point = float(x.numpy()[0, 0])
for cls, g, want, what in [(SquareForgotTwo, 1.0, point, "g·x, without the 2"),
                           (SquareForgotGrad, 3.0, 2 * point, "2x, whatever g is")]:
    assert isinstance(cls, type) and issubclass(cls, Square), (
        f"{getattr(cls, '__name__', cls)} should be a subclass of Square that overrides "
        "backward only")
    assert np.allclose(cls.apply(x).numpy(), x.numpy() ** 2), (
        f"{cls.__name__} should keep Square's forward and break only its backward")
    assert gradcheck_failure(cls.apply, x) is not None, (
        f"{cls.__name__} passes mt.gradcheck: its backward should return {what}")
    leaf = mt.tensor([point], requires_grad=True)
    cls.apply(leaf).backward(np.array([g], dtype=np.float32))
    assert np.allclose(leaf.grad, want), (
        f"with x = {point:.4f} and g = {g}, {cls.__name__}'s backward gives {leaf.grad}; it "
        f"should return {what}")
reported = float(re.search(r"rel error ([-\d.e+]+)",
                           gradcheck_failure(SquareForgotTwo.apply, x)).group(1))
assert abs(forgot_two_rel_error - reported) < 1e-3, (
    f"forgot_two_rel_error is {forgot_two_rel_error!r}, but the report of "
    "mt.gradcheck(SquareForgotTwo.apply, x) says otherwise: read its 'rel error' (with x = "
    "mt.randn(3, 4) after mt.manual_seed(0))")

# %% wrong ch03-square
class Square(Function):  # noqa: F811  (the rule of exp: the derivative taken as the output)
    @staticmethod
    def forward(ctx, x):
        y = x * x
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        return (2 * grad_out * y,)

# %% wrong ch03-square
forgot_two_rel_error = 2.0  # analytic / numeric read upside down

# %% exercise ch03-reverse-cumsum (2 points)
# Reverse: a Function for y = x[::-1] on 1-d arrays, with the right backward.
# Cumsum: a Function for y = cumulative sum of x along the last axis (any number of axes);
# backward returns (∂L/∂x,) with ∂L/∂x_j = Σ_{i ≥ j} g_i along that axis.
# BEGIN SOLUTION
class Reverse(Function):
    """y = x[::-1];  dL/dx = g[::-1]"""

    @staticmethod
    def forward(ctx, x):
        return x[::-1].copy()

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out[::-1].copy(),)


class Cumsum(Function):
    """y = cumsum(x, axis=-1);  dL/dx_j = sum over i >= j of g_i"""

    @staticmethod
    def forward(ctx, x):
        return array_module(x).cumsum(x, axis=-1)

    @staticmethod
    def backward(ctx, grad_out):
        xp = array_module(grad_out)
        return (xp.flip(xp.cumsum(xp.flip(grad_out, -1), axis=-1), -1),)
# END SOLUTION

# %% check ch03-reverse-cumsum
mt.manual_seed(3)
v = mt.randn(6)
assert np.array_equal(Reverse.apply(v).numpy(), v.numpy()[::-1]), "Reverse should flip x"
failure = gradcheck_failure(Reverse.apply, v)
assert failure is None, (
    f"Reverse fails mt.gradcheck: {failure}\nEach gradient must go back to the position its "
    "output came from")
for shape in [(5,), (3, 5), (2, 3, 4)]:
    t = mt.randn(*shape)
    assert np.allclose(Cumsum.apply(t).numpy(), np.cumsum(t.numpy(), axis=-1), atol=1e-6), (
        f"Cumsum.apply on shape {shape} should be the cumulative sum along the last axis")
    failure = gradcheck_failure(Cumsum.apply, t)
    assert failure is None, (
        f"Cumsum fails mt.gradcheck on shape {shape}: {failure}\nx_j feeds every y_i with "
        "i ≥ j: which gradients does it collect?")

# %% wrong ch03-reverse-cumsum
class Cumsum(Function):  # noqa: F811  (a cumulative sum from the start, not from the end)
    @staticmethod
    def forward(ctx, x):
        return array_module(x).cumsum(x, axis=-1)

    @staticmethod
    def backward(ctx, grad_out):
        return (array_module(grad_out).cumsum(grad_out, axis=-1),)

# %% wrong ch03-reverse-cumsum
class Reverse(Function):  # noqa: F811  (the chapter's WrongReverse: g passed on unchanged)
    @staticmethod
    def forward(ctx, x):
        return x[::-1].copy()

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out,)

# %% exercise ch03-best-eps (2 points)
# central_difference_error(dtype, eps) -> float: |estimate − exact| for the derivative of tanh
# at 0.7, where the estimate is the central difference (tanh(x + ε) − tanh(x − ε)) / 2ε computed
# entirely in dtype (np.float32 or np.float64: x = dtype(0.7), ε = dtype(eps)), and exact is
# 1 − tanh(0.7)² in float64.
# best_eps: dict {np.float32: ε, np.float64: ε}, for each dtype the ε of 1e-1, 1e-2, ..., 1e-10
# with the smallest error.
# larger_than_sqrt_eps: True or False, whether both best ε are larger than √(machine epsilon)
# of their dtype (np.finfo(dtype).eps).
# closer_to: "square root" or "cube root": on a log scale, are both best ε closer to
# √(machine epsilon) or to ∛(machine epsilon)?
# BEGIN SOLUTION
def central_difference_error(dtype, eps):
    x, step = dtype(0.7), dtype(eps)
    estimate = (np.tanh(x + step) - np.tanh(x - step)) / (2 * step)
    return abs(float(estimate) - (1 - np.tanh(0.7) ** 2))


grid = [10.0**-k for k in range(1, 11)]
best_eps = {dtype: min(grid, key=lambda eps, dtype=dtype: central_difference_error(dtype, eps))
            for dtype in (np.float32, np.float64)}  # 1e-2 and 1e-5
larger_than_sqrt_eps = all(best_eps[dtype] > np.sqrt(np.finfo(dtype).eps) for dtype in best_eps)
closer_to = "cube root"  # the total error ε² + eps/ε is smallest near ∛eps
# END SOLUTION

# %% check ch03-best-eps
exact = 1 - np.tanh(0.7) ** 2
error = central_difference_error(np.float64, 1e-4)
assert error < 1e-8, (
    f"central_difference_error(np.float64, 1e-4) is {error:.2g}; a central difference is off "
    "by about ε² there (2e-10), a one-sided one by about ε: use tanh(x + ε) − tanh(x − ε), "
    "divided by 2ε")
error = central_difference_error(np.float32, 1e-6)
assert error > 1e-4, (
    f"central_difference_error(np.float32, 1e-6) is only {error:.2g}: in float32 the rounding "
    "of x ± ε should ruin the estimate. Compute x, ε and the tanh in float32: "
    "x = np.float32(0.7), step = np.float32(eps)")
grid = [10.0**-k for k in range(1, 11)]
for dtype in (np.float32, np.float64):
    errors = [central_difference_error(dtype, eps) for eps in grid]
    best = grid[int(np.argmin(errors))]
    assert dtype in best_eps and np.isclose(best_eps[dtype], best), (
        f"best_eps[{dtype.__name__}] is {best_eps.get(dtype)}, but your errors over 1e-1 ... "
        f"1e-10 are {[f'{e:.1e}' for e in errors]}: pick the ε of the smallest")
machine = {dtype: np.finfo(dtype).eps for dtype in best_eps}
larger = all(best_eps[dtype] > np.sqrt(machine[dtype]) for dtype in best_eps)
assert larger_than_sqrt_eps is larger, (
    f"larger_than_sqrt_eps is {larger_than_sqrt_eps!r}; compare best_eps with √(machine "
    f"epsilon): {[f'{np.sqrt(m):.1e}' for m in machine.values()]}")
distance = {name: [abs(np.log10(best_eps[dtype]) - np.log10(machine[dtype]) * power)
                   for dtype in best_eps] for name, power in [("square root", 1 / 2),
                                                              ("cube root", 1 / 3)]}
nearer = "cube root" if all(c < s for c, s in zip(distance["cube root"],
                                                   distance["square root"])) else "square root"
assert closer_to == nearer, (
    f"closer_to is {closer_to!r}; the square roots of machine epsilon are "
    f"{[f'{m ** 0.5:.1e}' for m in machine.values()]} and the cube roots "
    f"{[f'{m ** (1 / 3):.1e}' for m in machine.values()]}, for best_eps "
    f"{list(best_eps.values())}")

# %% wrong ch03-best-eps
def central_difference_error(dtype, eps):  # noqa: F811  (the one-sided difference)
    x, step = dtype(0.7), dtype(eps)
    estimate = (np.tanh(x + step) - np.tanh(x)) / step
    return abs(float(estimate) - (1 - np.tanh(0.7) ** 2))

# %% wrong ch03-best-eps
def central_difference_error(dtype, eps):  # noqa: F811  (computed in float64 whatever dtype)
    estimate = (np.tanh(0.7 + eps) - np.tanh(0.7 - eps)) / (2 * eps)
    return abs(float(estimate) - (1 - np.tanh(0.7) ** 2))

# %% wrong ch03-best-eps
closer_to = "square root"  # the rule of thumb for the one-sided difference

# %% exercise ch03-broadcast-grad (2 points)
# predict_w_grad(x) -> NumPy array (1, 3): for a NumPy array x of shape (N, 3) and
# w = mt.ones(1, 3, requires_grad=True), the w.grad that backward gives for
# loss = (w * mt.tensor(x)).sum(), computed from x alone with NumPy (no backward).
# summing_op: str, the name of the Function (as creator.function.__name__ gives it) in
# loss's graph whose backward sums the (N, 3) gradient down to w's shape (1, 3).
# BEGIN SOLUTION
def predict_w_grad(x):
    return x.sum(axis=0, keepdims=True)  # ∂loss/∂w_j = Σ_i x_ij, kept as (1, 3)


summing_op = "BroadcastTo"  # the graph is Sum ← Mul ← BroadcastTo ← w
# END SOLUTION

# %% check ch03-broadcast-grad
for x in [np.arange(12.0, dtype=np.float32).reshape(4, 3),
          np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)]:
    w = mt.ones(1, 3, requires_grad=True)
    loss = (w * mt.tensor(x)).sum()
    loss.backward()
    predicted = np.asarray(predict_w_grad(x))
    assert predicted.shape == (1, 3), (
        f"predict_w_grad should return w's shape (1, 3), not {predicted.shape}")
    assert np.allclose(predicted, w.grad, atol=1e-5), (
        f"predict_w_grad gives {np.round(predicted, 4)}, which differs from w.grad by up to "
        f"{np.abs(predicted - w.grad).max():.4g} for x of shape {x.shape}: w_j multiplies every "
        "entry of column j of x; what does each of those products send back to w_j?")
names, input_shapes, node = [], [], loss.creator
while node is not None:  # follow the path from loss back to w
    parents = [t for t in node.inputs if t.requires_grad]
    names.append(node.function.__name__)
    input_shapes.append(parents[0].shape)
    node = parents[0].creator
assert summing_op in names, (
    f"summing_op is {summing_op!r}, which is not in the graph from loss back to w: {names}")
shape = input_shapes[names.index(summing_op)]
assert shape == (1, 3), (
    f"summing_op is {summing_op!r}, but its backward returns a gradient of its input's shape, "
    f"{shape}, not w's (1, 3); the graph from loss back to w is {names}: which op turned "
    "w's (1, 3) into (N, 3)?")

# %% wrong ch03-broadcast-grad
summing_op = "Sum"  # the op that sums the loss, not the one that sums the gradient

# %% wrong ch03-broadcast-grad
def predict_w_grad(x):  # noqa: F811  (the mean of each column instead of its sum)
    return x.mean(axis=0, keepdims=True)
