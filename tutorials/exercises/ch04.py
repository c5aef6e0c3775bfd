# %% setup
# Chapter 4's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
from minitransformer.ops.broadcast import sum_to


def gradcheck_failure(fn, *inputs):
    """None when mt.gradcheck(fn, *inputs) passes, else the report of its GradcheckError."""
    try:
        mt.gradcheck(fn, *inputs)
    except mt.GradcheckError as error:
        return str(error)
    return None


# %% exercise ch04-predict-wgrad (1 point)
# predict_w_grad(x) -> NumPy array (2, 1): for a NumPy array x of shape (4, 1, 3) and a
# w of shape (2, 1), the w.grad that backward gives for loss = (x * w).sum(), computed from x
# alone with NumPy (no backward, no sum_to).
# BEGIN SOLUTION
def predict_w_grad(x):
    # (4, 1, 3) * (2, 1) -> (4, 2, 3): every w_i multiplies every element of x once
    return np.full((2, 1), x.sum())
# END SOLUTION

# %% check ch04-predict-wgrad
mt.manual_seed(0)
x, w = mt.randn(4, 1, 3), mt.randn(2, 1, requires_grad=True)
(x * w).sum().backward()
by_sum_to = sum_to(np.broadcast_to(x.numpy(), (4, 2, 3)), (2, 1))  # g = 1 times ∂(x·w)/∂w = x
assert np.allclose(by_sum_to, w.grad, atol=1e-5), (
    f"backward gives w.grad = {w.grad.ravel()} but sum_to gives {by_sum_to.ravel()}: "
    "minitransformer's broadcast gradient is broken, not your answer")
predicted = np.asarray(predict_w_grad(x.numpy()))
assert predicted.shape == (2, 1), (
    f"predict_w_grad should return w's shape (2, 1), not {predicted.shape}")
assert np.allclose(predicted, w.grad, atol=1e-5), (
    f"predict_w_grad gives {predicted.ravel()}, which differs from w.grad (from backward and "
    f"from sum_to) by up to {np.abs(predicted - w.grad).max():.4g}: the product has shape "
    "(4, 2, 3); how many times, and with which elements of x, is each w_i multiplied?")

# %% wrong ch04-predict-wgrad
def predict_w_grad(x):  # noqa: F811  (x counted twice, as if the (4, 2, 3) product repeated it)
    return np.full((2, 1), 2 * x.sum())

# %% wrong ch04-predict-wgrad
def predict_w_grad(x):  # noqa: F811  (summed over the axes w was stretched along, shape lost)
    return x.sum(axis=(0, 2))

# %% exercise ch04-logsumexp (2 points)
# logsumexp(x, axis=-1) -> Tensor: log Σ e^x along `axis`, written as
# m + log(sum(exp(x − m))) with m = x.max(axis=axis, keepdims=True), from the Tensor ops of this
# chapter; the result keeps `axis` as size 1 (shape (3, 1) for a (3, 5) x and axis=-1).
# m_grad: NumPy array (2, 1), the gradient that reaches m (call m.retain_grad()) when the
# formula's result, summed, is backpropagated for
# x = mt.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], requires_grad=True) and axis=-1.
# BEGIN SOLUTION
def logsumexp(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return m + (x - m).exp().sum(axis=axis, keepdims=True).log()


x = mt.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], requires_grad=True)
m = x.max(axis=-1, keepdims=True)
m.retain_grad()
(m + (x - m).exp().sum(axis=-1, keepdims=True).log()).sum().backward()
m_grad = m.grad  # zeros: the direct path (+1) and the paths through x − m (−Σ softmax) cancel
# END SOLUTION

# %% check ch04-logsumexp
mt.manual_seed(4)
for shape, axis in [((3, 5), -1), ((4, 3), 0), ((2, 3, 4), 1)]:
    t = mt.randn(*shape)
    got = logsumexp(t, axis)
    want = mt.logsumexp(t, axis=axis).numpy()
    kept = np.expand_dims(want, axis)
    assert got.shape == kept.shape, (
        f"logsumexp of shape {shape} over axis {axis} has shape {got.shape}, not {kept.shape}: "
        "keep the reduced axis (keepdims=True) in the max and in the sum")
    assert np.allclose(got.numpy(), kept, atol=1e-5), (
        f"logsumexp differs from mt.logsumexp by up to {np.abs(got.numpy() - kept).max():.3g} "
        f"(shape {shape}, axis {axis})")
    failure = gradcheck_failure(lambda a, axis=axis: logsumexp(a, axis), t)
    assert failure is None, f"logsumexp fails mt.gradcheck (axis {axis}): {failure}"
with np.errstate(over="ignore"):  # a version without the max shift overflows here
    big = logsumexp(mt.tensor([[1000.0, 1001.0]])).numpy()
assert np.all(np.isfinite(big)) and abs(big.item() - 1001.3132617) < 1e-3, (
    f"logsumexp([[1000, 1001]]) is {big}: e^1000 overflows, so subtract the max m before "
    "exp and add it back after the log")
m_grad = np.asarray(m_grad)
assert m_grad.shape == (2, 1), f"m_grad should have m's shape (2, 1), not {m_grad.shape}"
assert np.abs(m_grad).max() < 1e-5, (
    f"m_grad is {m_grad.ravel()}; call m.retain_grad() before backward and read m.grad. "
    "Which paths does the gradient take from the result to m?")

# %% wrong ch04-logsumexp
def logsumexp(x, axis=-1):  # noqa: F811  (no max shift: overflows)
    return x.exp().sum(axis=axis, keepdims=True).log()

# %% wrong ch04-logsumexp
def logsumexp(x, axis=-1):  # noqa: F811  (the sum drops the axis: (3,) meets (3, 1) m)
    m = x.max(axis=axis, keepdims=True)
    return m + (x - m).exp().sum(axis=axis).log()

# %% wrong ch04-logsumexp
m_grad = np.ones((2, 1))  # as if only the direct path `m +` counted

# %% exercise ch04-std-grad (2 points)
# std_grad(x) -> NumPy array of x's shape: your formula for ∂std/∂x_i, correction 0, for a 1-d
# NumPy array x (not all equal), written with NumPy (no backward).
# constant_grad: NumPy array (3,), the x.grad that minitransformer gives for
# x = mt.tensor([3.0, 3.0, 3.0], requires_grad=True) after x.std().backward().
# BEGIN SOLUTION
def std_grad(x):
    return (x - x.mean()) / (x.size * x.std())  # 1/(2σ) · 2(x_i − μ)/n


x = mt.tensor([3.0, 3.0, 3.0], requires_grad=True)
with np.errstate(divide="ignore", invalid="ignore"):  # 1/(2σ) = inf, then inf · 0
    x.std().backward()
constant_grad = x.grad  # all NaN
# END SOLUTION

# %% check ch04-std-grad
rng = np.random.default_rng(5)
for data in [np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), rng.standard_normal(5),
             rng.standard_normal(11) * 3 + 1]:
    t = mt.tensor(data, requires_grad=True)  # float64, as the data
    t.std().backward()
    mine = np.asarray(std_grad(data))
    assert mine.shape == data.shape and np.allclose(mine, t.grad, atol=1e-10), (
        f"for x = {np.round(data, 3)}, std_grad gives {np.round(mine, 4)} but backward gives "
        f"{np.round(t.grad, 4)}: chain ∂σ/∂var = 1/(2σ) with ∂var/∂x_i = 2(x_i − μ)/n")
constant_grad = np.asarray(constant_grad, dtype=np.float64)
assert constant_grad.shape == (3,) and np.all(np.isnan(constant_grad)), (
    f"constant_grad is {constant_grad}; run x.std().backward() on "
    "x = mt.tensor([3.0, 3.0, 3.0], requires_grad=True) and read x.grad (what is 1/(2σ) · 0 "
    "when σ = 0?)")

# %% wrong ch04-std-grad
def std_grad(x):  # noqa: F811  (the 1/n of the variance forgotten)
    return (x - x.mean()) / x.std()

# %% wrong ch04-std-grad
constant_grad = np.zeros(3)  # a guess: "nothing varies, so the gradient is 0"

# %% exercise ch04-three-way-tie (2 points)
# For the row x = [[4.0, 4.0, 1.0, 4.0]] (a three-way tie for the maximum):
# tie_grad: NumPy array (1, 4), x.grad after x.max(axis=1).backward(g) with g = [3.0].
# right_slope, left_slope: floats, the one-sided slopes of the row's max with respect to x[0, 0]:
# (max(x + ε e) − max(x)) / ε and (max(x) − max(x − ε e)) / ε, for ε = 1e-3 and e the array
# with 1 at [0, 0] (NumPy float64 is fine).
# gradcheck_passes: True or False, whether mt.gradcheck(lambda a: a.max(axis=1), x) passes.
# two_way_passes: True or False, whether the same check passes on [[4.0, 4.0, 1.0]].
# BEGIN SOLUTION
x = mt.tensor([[4.0, 4.0, 1.0, 4.0]], requires_grad=True)
x.max(axis=1).backward(np.array([3.0], dtype=np.float32))
tie_grad = x.grad  # [[1, 1, 0, 1]]: g = 3 shared, 3/3 each

row, e = np.array([[4.0, 4.0, 1.0, 4.0]]), np.zeros((1, 4))
e[0, 0] = 1e-3
right_slope = float((np.max(row + e) - np.max(row)) / 1e-3)  # 1: this element becomes the max
left_slope = float((np.max(row) - np.max(row - e)) / 1e-3)  # 0: the other two hold the max at 4


def passes(values):
    try:
        return mt.gradcheck(lambda a: a.max(axis=1), mt.tensor(values))
    except mt.GradcheckError:
        return False


gradcheck_passes = passes([[4.0, 4.0, 1.0, 4.0]])  # False: numeric (1 + 0)/2 = g/2, not g/3
two_way_passes = passes([[4.0, 4.0, 1.0]])  # True: with k = 2, g/k = g/2 is the average
# END SOLUTION

# %% check ch04-three-way-tie
t = mt.tensor([[4.0, 4.0, 1.0, 4.0]], requires_grad=True)
t.max(axis=1).backward(np.array([3.0], dtype=np.float32))
tie_grad = np.asarray(tie_grad)
assert tie_grad.shape == (1, 4) and np.allclose(tie_grad, t.grad), (
    f"tie_grad is {tie_grad.tolist()}, but x.max(axis=1).backward(g) with g = [3.0] gives "
    "another x.grad: pass g = np.array([3.0], dtype=np.float32) to backward")
row = np.array([[4.0, 4.0, 1.0, 4.0]])
e = np.zeros((1, 4))
e[0, 0] = 1e-3
for name, value, step in [("right_slope", right_slope, e), ("left_slope", left_slope, -e)]:
    slope = abs(np.max(row + step) - np.max(row)) / 1e-3
    assert abs(value - slope) < 1e-2, (
        f"{name} is {value!r}, but the max moves by {abs(np.max(row + step) - 4.0):.4g} when "
        f"x[0, 0] moves by {step[0, 0]:+g}: the other tied elements stay at 4")
for name, claim, values in [("gradcheck_passes", gradcheck_passes, [[4.0, 4.0, 1.0, 4.0]]),
                            ("two_way_passes", two_way_passes, [[4.0, 4.0, 1.0]])]:
    failure = gradcheck_failure(lambda a: a.max(axis=1), mt.tensor(values))
    assert claim is (failure is None), (
        f"{name} is {claim!r}; run mt.gradcheck(lambda a: a.max(axis=1), mt.tensor({values})) "
        "and see. The central difference measures (right_slope + left_slope) / 2 = "
        f"{(right_slope + left_slope) / 2:.3g} per unit of g; the backward gives each of the k "
        "tied elements 1/k of g")

# %% wrong ch04-three-way-tie
gradcheck_passes = True  # a guess: "max passes gradcheck", true only away from ties

# %% wrong ch04-three-way-tie
left_slope = right_slope  # as if the max were differentiable at the tie

# %% wrong ch04-three-way-tie
x = mt.tensor([[4.0, 4.0, 1.0, 4.0]], requires_grad=True)
x.max(axis=1).backward()  # g = 1, not 3
tie_grad = x.grad
