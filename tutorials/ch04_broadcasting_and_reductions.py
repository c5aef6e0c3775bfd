# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 4 — Broadcasting and reductions
#
# Two kinds of operation change a tensor's shape without any weights: **broadcasting** makes a
# small tensor act as if it were repeated (a bias added to every position of a batch), and a
# **reduction** collapses axes (a sum over the batch, a mean over features, a maximum over
# classes). Every layer of a Transformer uses both: LayerNorm takes a mean and a variance over the
# last axis, softmax a maximum and a sum, the loss a mean over the batch. This chapter works out
# their gradients, which turn out to be each other's mirror image.
#
# **Learning objectives.** After this chapter you can
#
# 1. predict the shape broadcasting gives, aligning shapes from the right;
# 2. explain why the gradient of a broadcast is a *sum*, and compute it with `sum_to`;
# 3. reduce over one axis, several axes or all of them, with and without `keepdims`;
# 4. state the backward of `sum` (spread), `mean` (spread and divide) and `max` (route to the
#    winner, ties share);
# 5. compute a variance and a standard deviation with `correction=0` or `1`;
# 6. verify every one of these gradients with `mt.gradcheck`, and read a `ShapeError`.

# %%
import os

import numpy as np

import minitransformer as mt
from minitransformer.ops.broadcast import broadcast_shapes, sum_to

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # smaller gradient-check inputs when set
B, T, D = (2, 3, 4) if FAST else (3, 5, 6)  # batch, sequence, features

# %% [markdown]
# ## 1. The broadcasting rules, once more
#
# Chapter 2 stated NumPy's rules, which minitransformer follows exactly:
#
# 1. write the two shapes one above the other, **aligned from the right**;
# 2. a missing leading axis counts as size 1;
# 3. on each axis the sizes must be equal, or one of them must be 1; a size-1 axis is
#    **stretched** (repeated) to the other size.
#
#         x:      (B, T, D)          x:    (4, 1, 3)
#         bias:         (D)          y:       (2, 1)
#         result: (B, T, D)          ->    (4, 2, 3)
#
# `broadcast_shapes` applies these rules to shapes alone. We compare it with NumPy on a few cases.

# %%
cases = [((B, T, D), (D,)), ((4, 1, 3), (2, 1)), ((5, 1), (1, 6)), ((), (2, 3)), ((1,), (7,))]
for left, right in cases:
    ours = broadcast_shapes("demo", left, right)
    print(f"{str(left):>10} with {str(right):<7} -> {ours}")
    assert ours == np.broadcast_shapes(left, right)

# %% [markdown]
# Stretching does not copy memory. `mt.broadcast_to` returns a tensor that *looks* repeated; under
# it is a NumPy view with stride 0 along the stretched axis.

# %%
bias = mt.tensor([1.0, 2.0, 3.0])
stretched = mt.broadcast_to(bias, (4, 3))
print(stretched)
print("strides of the data:", stretched.data.strides)  # 0 bytes to step to the next row
assert stretched.shape == (4, 3) and stretched.data.strides[0] == 0

# %% [markdown]
# ## 2. The gradient of a broadcast is a sum
#
# In `y = x + bias` with x of shape (4, 3), the bias value `bias[j]` is used four times, once in
# every row: yᵢⱼ = xᵢⱼ + bias_j. By the rule of Chapter 1 (a value used several times receives the
# sum of the gradients of its uses):
#
#     ∂L/∂bias_j = Σᵢ ∂L/∂yᵢⱼ · ∂yᵢⱼ/∂bias_j = Σᵢ gᵢⱼ
#
# The *forward* repeats along an axis, so the *backward* sums along it. In general: sum over every
# leading axis that broadcasting added, and over every axis where the input had size 1 (keeping
# it, as size 1). That is `sum_to(grad, shape)`, the backward of minitransformer's one
# `BroadcastTo` op (Chapter 3).

# %%
x = mt.randn(4, 3)
bias = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x + bias  # (4, 3): bias went through BroadcastTo first
g = np.arange(12.0, dtype=np.float32).reshape(4, 3)  # an upstream gradient we can read
y.backward(g)
print("bias.grad =", bias.grad, "  column sums of g =", g.sum(axis=0))
assert np.array_equal(bias.grad, g.sum(axis=0))
assert np.array_equal(bias.grad, sum_to(g, (3,)))

# %% [markdown]
# A size-1 axis in the *middle* works the same way. Here a per-sequence scale of shape (B, 1, 1)
# multiplies a (B, T, D) activation: each scale is used T·D times, so its gradient sums over T and
# D and keeps those axes as size 1.

# %%
mt.manual_seed(0)
h = mt.randn(B, T, D)
scale = mt.randn(B, 1, 1, requires_grad=True)
upstream = np.random.default_rng(0).standard_normal((B, T, D)).astype(np.float32)
(h * scale).backward(upstream)
# BEGIN SOLUTION
expected = (upstream * h.numpy()).sum(axis=(1, 2), keepdims=True)  # (B, 1, 1)
# END SOLUTION
print("scale.grad shape", scale.grad.shape)
assert scale.grad.shape == (B, 1, 1)
assert np.allclose(scale.grad, expected, atol=1e-5), (
    f"your expected (shape {np.shape(expected)}) differs from scale.grad (shape "
    f"{scale.grad.shape}): sum upstream · h over the axes scale was broadcast along, (1, 2), "
    "with keepdims=True"
)

# %% [markdown]
# `mt.gradcheck` confirms both, in float64 against central differences. Inputs of different
# shapes go in side by side; the checker perturbs each one.

# %%
assert mt.gradcheck(lambda a, b: a + b, mt.randn(4, 3), mt.randn(3))
assert mt.gradcheck(lambda a, s: a * s, mt.randn(B, T, D), mt.randn(B, 1, 1))
assert mt.gradcheck(lambda col, row: col * row, mt.randn(5, 1), mt.randn(1, 6))  # outer product
print("broadcast gradients pass gradcheck")

# %% [markdown]
# ## 3. Reductions: `axis` and `keepdims`
#
# A reduction combines the elements along some axes into one. minitransformer takes NumPy's
# arguments: `axis` is an int, a tuple of ints, a negative index (−1 is the last axis) or `None`
# for every axis; `keepdims=True` keeps each reduced axis as size 1 instead of dropping it.
#
# | call on x (B, T, D)              | result shape |
# |----------------------------------|--------------|
# | `x.sum()`                        | `()`         |
# | `x.sum(axis=0)`                  | `(T, D)`     |
# | `x.sum(axis=-1)`                 | `(B, T)`     |
# | `x.sum(axis=(0, 1))`             | `(D,)`       |
# | `x.sum(axis=-1, keepdims=True)`  | `(B, T, 1)`  |

# %%
x = mt.randn(B, T, D)
assert x.sum().shape == ()
assert x.sum(axis=0).shape == (T, D)
assert x.sum(axis=-1).shape == (B, T)
assert x.sum(axis=(0, 1)).shape == (D,)
assert x.sum(axis=-1, keepdims=True).shape == (B, T, 1)
assert np.allclose(x.sum(axis=(0, 1)).numpy(), x.numpy().sum(axis=(0, 1)), atol=1e-5)
assert np.allclose(mt.mean(x, axis=1).numpy(), x.numpy().mean(axis=1), atol=1e-6)
print("reduction shapes as in the table")

# %% [markdown]
# `keepdims` exists for broadcasting. To centre every feature vector, subtract its own mean: the
# (B, T) means must line up with the (B, T, D) activations, which they do as (B, T, 1). Without
# `keepdims` the shapes are aligned from the right, T meets D and B meets T, and the subtraction
# fails with a `ShapeError` naming the op, both shapes and an axis whose sizes clash.

# %%
# BEGIN SOLUTION
centered = x - x.mean(axis=-1, keepdims=True)  # (B, T, D) - (B, T, 1)
# END SOLUTION
assert np.allclose(centered.mean(axis=-1).numpy(), 0.0, atol=1e-6), (
    f"every row of centered should have mean 0, the largest |mean| is "
    f"{np.abs(centered.mean(axis=-1).numpy()).max():.2e}: subtract the mean over the last "
    "axis, x.mean(axis=-1, keepdims=True)"
)

try:
    x - x.mean(axis=-1)  # (B, T, D) - (B, T): T meets D
except mt.ShapeError as error:
    message = str(error)
    print("ShapeError:", message)
else:
    raise AssertionError("subtracting a (B, T) mean from (B, T, D) must fail")
assert f"{(B, T, D)}" in message and f"{(B, T)}" in message and "cannot broadcast" in message

# %% [markdown]
# An axis that does not exist is reported too, with the valid range:

# %%
try:
    x.sum(axis=3)
except mt.ShapeError as error:
    print("ShapeError:", error)
    assert "out of range" in str(error)
else:
    raise AssertionError("axis 3 of a 3-d tensor must be refused")

# %% [markdown]
# ## 4. The backward of a reduction spreads the gradient back
#
# A reduction is broadcasting run backwards, and so is its gradient:
#
# - **sum**: y = Σᵢ xᵢ, so ∂y/∂xᵢ = 1 and every summed element receives g unchanged. The backward
#   reshapes g to the `keepdims` shape and *broadcasts* it over the reduced axes.
# - **mean**: y = (1/n) Σᵢ xᵢ, so every element receives g / n. In minitransformer `mean` is not a
#   primitive at all: it is `sum` followed by a division by n, and autograd composes the two.
#
# So broadcast ↔ sum are a pair: the backward of one is the forward of the other.

# %%
x = mt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
x.sum(axis=1).backward(np.array([10.0, 20.0], dtype=np.float32))
print("sum over axis 1, g = [10, 20]:\n", x.grad)
assert np.array_equal(x.grad, [[10, 10, 10], [20, 20, 20]])

x.zero_grad()
x.mean(axis=1).backward(np.array([10.0, 20.0], dtype=np.float32))
print("mean over axis 1:\n", x.grad)
assert np.allclose(x.grad, [[10 / 3] * 3, [20 / 3] * 3])

x.zero_grad()
x.mean().backward()  # all 6 elements: g = 1 spread as 1/6
assert np.allclose(x.grad, 1 / 6)
node = x.mean().creator
print("mean is", node.function.__name__, "of", node.inputs[0].creator.function.__name__)
assert (node.function.__name__, node.inputs[0].creator.function.__name__) == ("Div", "Sum")

# %% [markdown]
# ## 5. max routes the gradient to the winner; ties share it
#
# y = max(x₁, …, xₙ) depends on its largest element only: nudge any other element a little and y
# does not move. So ∂y/∂xᵢ is 1 at the argmax and 0 elsewhere, and the backward *routes* g to the
# winning position. This is exactly the rule of max-pooling.
#
# With a tie the maximum is not differentiable (its left and right derivatives differ). A
# convention is needed; minitransformer, like PyTorch's `amax`, splits g evenly among the k tied
# elements, g/k each, so the total passed down is still g. `min` works the same way.

# %%
x = mt.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
y = x.max(axis=1)  # [5, 7]: row 1 has a tie
y.backward(np.array([1.0, 1.0], dtype=np.float32))
print("max:", y.tolist(), "\ngrad:\n", x.grad)
assert y.tolist() == [5.0, 7.0]
assert np.array_equal(x.grad, [[0, 1, 0], [0.5, 0, 0.5]])
assert np.allclose(x.grad.sum(axis=1), 1.0)  # each row passes down all of its g

x.zero_grad()
x.min(axis=1).backward(np.array([1.0, 1.0], dtype=np.float32))
assert np.array_equal(x.grad, [[1, 0, 0], [0, 1, 0]])

# %% [markdown]
# Away from ties, max is differentiable, and the gradient check agrees. (Random normal data has no
# ties, almost surely; with a tie, the central difference measures the average of the two
# one-sided slopes, which for k = 2 happens to equal the shared g/2.)

# %%
mt.manual_seed(1)
assert mt.gradcheck(lambda t: t.max(axis=-1), mt.randn(B, T, D))
assert mt.gradcheck(lambda t: t.max(axis=(0, 2), keepdims=True), mt.randn(B, T, D))
assert mt.gradcheck(lambda t: t.min(axis=0), mt.randn(B, T, D))
print("max and min pass gradcheck")

# %% [markdown]
# ## 6. Variance and standard deviation, with `correction`
#
# The variance over n elements with mean μ is
#
#     var(x) = Σᵢ (xᵢ − μ)² / (n − correction)
#
# `correction=0` (the default, NumPy's `ddof=0`) is the *population* variance: what LayerNorm
# uses. `correction=1` (Bessel's correction) is the *unbiased sample* variance, since the
# deviations from the sample's own mean are a little smaller than those from the true mean.
# `std` is its square root.
#
# Both are composites of `mean`, `sub`, `mul`, `sum` and `div`, so their gradient comes from the
# chain rule for free. By hand, for correction 0:
#
#     ∂var/∂xᵢ = 2 (xᵢ − μ) / n       (the path through μ adds Σⱼ 2(xⱼ − μ)/n · (−1/n) = 0)

# %%
data = np.array([[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]])
x = mt.tensor(data, requires_grad=True)
print("var, correction 0:", x.var().item(), "  correction 1:", x.var(correction=1).item())
print("std, correction 0:", x.std().item())
assert x.var().item() == np.var(data) == 4.0 and x.std().item() == 2.0
assert np.isclose(x.var(correction=1).item(), np.var(data, ddof=1))
assert np.allclose(x.var(axis=1).numpy(), np.var(data, axis=1))

x.var().backward()
assert np.allclose(x.grad, 2 * (data - data.mean()) / data.size)

# %% [markdown]
# A correction that leaves no degrees of freedom is an error, not a silent division by zero:

# %%
try:
    mt.ones(2, 1).var(axis=1, correction=1)
except ValueError as error:
    print("ValueError:", error)
    assert "correction=1" in str(error) and "(2, 1)" in str(error)
else:
    raise AssertionError("var of one element with correction=1 must be refused")

# %% [markdown]
# One caution: d√v/dv = 1/(2√v) is infinite at v = 0, so `std` of a constant vector has an
# infinite gradient. This is why LayerNorm divides by √(σ² + ε), never by σ itself.
#
# ## 7. Gradient checks of every reduction
#
# We finish by checking each reduction of this chapter, over several axis choices. `mt.gradcheck`
# uses a random upstream gradient, so a backward that spread g over the wrong axis would fail.

# %%
mt.manual_seed(2)
x = mt.randn(B, T, D)
reductions = {
    "sum()": lambda t: t.sum(),
    "sum(axis=1)": lambda t: t.sum(axis=1),
    "sum(axis=(0, 2), keepdims)": lambda t: t.sum(axis=(0, 2), keepdims=True),
    "mean(axis=-1)": lambda t: t.mean(axis=-1),
    "mean(axis=(0, 1))": lambda t: t.mean(axis=(0, 1)),
    "max(axis=1)": lambda t: t.max(axis=1),
    "var(axis=-1)": lambda t: t.var(axis=-1),
    "var(axis=0, correction=1)": lambda t: t.var(axis=0, correction=1),
    "std(axis=-1, keepdims)": lambda t: t.std(axis=-1, keepdims=True),
    "layer-norm by hand": lambda t: (t - t.mean(axis=-1, keepdims=True))
    / (t.var(axis=-1, keepdims=True) + 1e-5).sqrt(),
}
for name, fn in reductions.items():
    report = mt.gradcheck(fn, x, report=True)
    print(f"{name:<28} max |analytic - numeric| = {report.max_abs_error:.1e}")

# %% [markdown]
# The last line, centring by the mean and dividing by √(var + ε), is LayerNorm without its weight
# and bias, written entirely from this chapter's pieces. minitransformer also has it as one fused
# op (Chapter 6), whose hand-written backward must agree with this composed one:

# %%
composed = reductions["layer-norm by hand"](x)
fused = mt.functional.layer_norm(x, None, None, 1e-5)
print("largest difference, composed vs fused:", float(np.abs((composed - fused).numpy()).max()))
assert np.allclose(composed.numpy(), fused.numpy(), atol=1e-5)

# %% [markdown]
# ## Summary
#
# - Broadcasting aligns shapes from the right; a size-1 (or missing) axis is stretched without
#   copying memory.
# - A broadcast value is used many times, so its gradient is the **sum** over the stretched axes:
#   `sum_to`, the backward of `BroadcastTo`.
# - Reductions take NumPy's `axis` (int, tuple, negative, None) and `keepdims`; `keepdims=True`
#   keeps the result broadcastable against the input, which is what centring and normalising need.
# - The backward of `sum` broadcasts g back; `mean` also divides by n; `max`/`min` route g to the
#   extreme element, and k tied elements share it, g/k each.
# - `var` and `std` are composites with `correction` (0 = population, NumPy's default; 1 =
#   unbiased); the gradient of `std` is infinite at zero variance.
#
# ## Exercises
#
# ```{exercise} A weight broadcast over everything
# :label: ch04-predict-wgrad
#
# Predict `w.grad` for `loss = (x * w).sum()` with x of shape (4, 1, 3) and w of shape (2, 1),
# then check with backward and with `sum_to`.
# ```
#
# ````{solution} ch04-predict-wgrad
# :class: dropdown
#
# The product broadcasts to (4, 2, 3): x is repeated along axis 1, w along axes 0 and 2. So
# every wᵢ multiplies *every* element of x once, and ∂loss/∂wᵢ = Σ x, the sum of all 12 elements
# of x, for both i: `w.grad` has shape (2, 1) with two equal entries.
#
# ```python
# mt.manual_seed(0)
# x, w = mt.randn(4, 1, 3), mt.randn(2, 1, requires_grad=True)
# (x * w).sum().backward()
# upstream_for_w = np.broadcast_to(x.numpy(), (4, 2, 3))  # g = 1 times ∂(x·w)/∂w = x
# print(w.grad.ravel(), x.numpy().sum(), sum_to(upstream_for_w, (2, 1)).ravel())
# # [-0.5070791 -0.5070791] -0.507079 [-0.5070791 -0.5070791]
# ```
# ````
#
# ```{exercise} log-sum-exp from max, exp, sum and log
# :label: ch04-logsumexp
#
# Write `logsumexp(x, axis)` as `m + log(sum(exp(x − m)))` with `m = x.max(axis, keepdims=True)`
# from this chapter's ops. Does it pass `mt.gradcheck`? Why does the gradient flowing through
# `m` cancel out? Compare with `mt.logsumexp`.
# ```
#
# ````{solution} ch04-logsumexp
# :class: dropdown
#
# ```python
# def logsumexp(x, axis=-1):
#     m = x.max(axis=axis, keepdims=True)
#     return m + (x - m).exp().sum(axis=axis, keepdims=True).log()  # keeps the axis as size 1
#
#
# x = mt.randn(3, 5)
# assert mt.gradcheck(lambda t: logsumexp(t, -1), x)
# print(np.abs(logsumexp(x, -1).numpy()[:, 0] - mt.logsumexp(x, axis=-1).numpy()).max())  # 0.0
# big = mt.tensor([[1000.0, 1001.0]])
# print(logsumexp(big), big.exp().sum(axis=-1).log())  # 1001.31323 versus inf
# ```
#
# It passes, agrees with `mt.logsumexp` exactly, and stays finite where the naive
# `log(sum(exp(x)))` overflows. The value does not depend on m at all:
# m + log Σ e^{xᵢ−m} = log Σ e^{xᵢ} for *any* m. So ∂(result)/∂m = 1 − Σᵢ e^{xᵢ−m}/Σⱼ e^{xⱼ−m}
# = 1 − 1 = 0: the direct path through `m +` and the path through every `x − m` cancel exactly.
# Treating m as a constant (computing it without the graph) gives the same gradient, which is
# the softmax of x, as Chapter 5 shows.
# ````
#
# ```{exercise} The gradient of the standard deviation
# :label: ch04-std-grad
#
# Derive ∂std/∂xᵢ for correction 0 and check your formula against `x.std().backward()`.
# What happens to your formula, and to minitransformer's gradient, when all xᵢ are equal?
# ```
#
# ````{solution} ch04-std-grad
# :class: dropdown
#
# With σ = √var and ∂var/∂xᵢ = 2(xᵢ − μ)/n (section 6), the chain rule gives
#
#     ∂σ/∂xᵢ = 1/(2σ) · 2(xᵢ − μ)/n = (xᵢ − μ) / (n σ)
#
# ```python
# data = np.array([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])  # μ = 5, σ = 2
# x = mt.tensor(data, requires_grad=True)
# x.std().backward()
# print(x.grad)                                        # [-0.1875 -0.0625 ... 0.125 0.25]
# print((data - data.mean()) / (data.size * data.std()))  # the same
# ```
#
# When all xᵢ are equal the formula is 0/0: undefined. minitransformer computes `sqrt`'s
# backward as g/(2σ) = ∞ and then multiplies by the (xᵢ − μ) = 0 of the variance's backward, so
# `mt.tensor([3.0, 3.0, 3.0], requires_grad=True).std()` backpropagates **NaN** into every
# element (with NumPy's divide-by-zero warnings). One such row poisons a whole training step:
# this is why LayerNorm uses √(var + ε).
# ````
#
# ```{exercise} A three-way tie
# :label: ch04-three-way-tie
#
# Build a tensor with a three-way tie for the maximum in one row and check that each tied
# element receives g/3. Then run `mt.gradcheck` on it: does it pass, and why (think about the
# left and right slopes)?
# ```
#
# ````{solution} ch04-three-way-tie
# :class: dropdown
#
# ```python
# t = mt.tensor([[4.0, 4.0, 1.0, 4.0]], requires_grad=True)
# t.max(axis=1).backward(np.array([3.0], dtype=np.float32))
# print(t.grad)  # [[1. 1. 0. 1.]]: g = 3 shared, 3/3 each
# mt.gradcheck(lambda a: a.max(axis=1), mt.tensor([[4.0, 4.0, 1.0, 4.0]]))  # raises
# ```
#
# The check **fails**: "analytic 0.0419101 vs numeric 0.0628651 (… rel error 0.333 …); 3 of 4
# checked elements fail". Raising one tied element by ε raises the max by ε (right slope 1);
# lowering it leaves the max at 4, held by the other two (left slope 0). The central difference
# averages the two slopes and measures g/2, while the backward gives g/3, and 0.0628651 is
# exactly 1.5 × 0.0419101. With a two-way tie g/k = g/2 happens to equal the average, and the
# same check on `[[4.0, 4.0, 1.0]]` passes. Neither number is "the" derivative: at a tie there
# is none, and any split that sums to g is a valid subgradient convention.
# ````
