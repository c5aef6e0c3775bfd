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
# # Chapter 3 — The autograd engine and gradient checking
#
# Chapter 1 built autograd on scalars; Chapter 2 introduced tensors. Here we open up
# minitransformer's engine, which is Chapter 1's idea on arrays, and then learn to *prove* that a
# backward is right with the numerical gradient checker.
#
# **Learning objectives.** After this chapter you can
#
# 1. write a new op as a `Function` subclass: `forward` and `backward` on raw arrays;
# 2. inspect the recorded graph through `tensor.creator`, `creator.function` and `creator.inputs`;
# 3. predict how gradients add up: a tensor used twice, repeated backward calls, `zero_grad()`;
# 4. use `mt.no_grad()` and `retain_graph=True`, and explain what each one keeps or skips;
# 5. explain how broadcasting enters the graph in exactly one place (`BroadcastTo`, `sum_to`);
# 6. check a gradient by central differences by hand, then with `mt.gradcheck`, and read the
#    report of a failing check;
# 7. explain why the checker works in float64 and with a random upstream gradient.

# %%
import importlib.util
import os

import numpy as np

import minitransformer as mt
from minitransformer.autograd import Context, Function
from minitransformer.backend import array_module
from minitransformer.ops.broadcast import sum_to

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # smaller gradient-check inputs when set
CHECK_SHAPE = (3, 4) if FAST else (6, 8)
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. A Function: forward and backward on raw arrays
#
# Every primitive op is a subclass of `Function` with two static methods, written side by side:
#
# - `forward(ctx, *arrays)` receives **raw backend arrays** (not tensors) and returns one array.
#   Whatever backward will need, it stores with `ctx.save_for_backward(...)`.
# - `backward(ctx, grad_out)` receives g = ∂L/∂y, an array of y's shape, and returns ∂L/∂x for
#   each input (a tuple, or a single array for a single input).
#
# As our example we take **softplus**, a smooth ReLU:
#
#     y = softplus(x) = ln(1 + eˣ)
#     dy/dx = eˣ / (1 + eˣ) = σ(x)               (the sigmoid)
#
# and so ∂L/∂x = g · σ(x). Two numerical details, both worth copying:
#
# - `ln(1 + eˣ)` overflows for large x; `logaddexp(0, x)` computes the same value stably.
# - σ(x) can be read off the *output*: e^(−y) = 1/(1 + eˣ), so σ(x) = 1 − e^(−y). We write it as
#   `-expm1(-y)`, which stays accurate when y is tiny. Saving y instead of x is a common trick
#   (minitransformer's `Exp`, `Tanh` and `Sqrt` do the same).

# %%
class Softplus(Function):
    """y = ln(1 + eˣ)

    dL/dx = g · σ(x) = g · (1 − e^(−y))
    """

    @staticmethod
    def forward(ctx, x):
        y = array_module(x).logaddexp(0, x)  # ln(e⁰ + eˣ), without overflow
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        # BEGIN SOLUTION
        (y,) = ctx.saved
        return (grad_out * -array_module(y).expm1(-y),)  # g · (1 − e^(−y))
        # END SOLUTION


def softplus(x):
    """softplus(x) = ln(1 + eˣ), elementwise.  Shapes: x (...) -> (...)"""
    return Softplus.apply(x)


# %% [markdown]
# The two methods are plain functions of arrays. We can call them ourselves, with a `Context` to
# carry the saved array from one to the other; this is all the engine does for each node.

# %%
x_raw = np.array([-2.0, 0.0, 3.0])
ctx = Context(Softplus, inputs=(), needs_input_grad=(True,))
y_raw = Softplus.forward(ctx, x_raw)
(grad_x_raw,) = Softplus.backward(ctx, np.ones(3))  # g = 1: the derivative itself
print("y =", y_raw, " dy/dx =", grad_x_raw)
assert np.allclose(y_raw, np.log1p(np.exp(x_raw)))
assert np.allclose(grad_x_raw, 1 / (1 + np.exp(-x_raw))), (  # σ(x)
    f"dy/dx should be σ(x) = {1 / (1 + np.exp(-x_raw))}, got {grad_x_raw}: Softplus.backward "
    "should return (grad_out · (1 − e^(−y)),) with y read from ctx.saved"
)

# %% [markdown]
# `Softplus.apply(t)` does the same for tensors: it unwraps the arrays, runs `forward`, wraps the
# result, and, if an input requires grad, records the node so `backward` can find it later.

# %%
x = mt.tensor([-2.0, 0.0, 3.0], requires_grad=True)
y = softplus(x)
y.sum().backward()
print(y, x.grad)
assert isinstance(y.data, np.ndarray) and y.dtype == x.dtype == np.float32
assert np.allclose(x.grad, 1 / (1 + np.exp(-x.numpy()))), (
    f"x.grad should be σ(x) = {1 / (1 + np.exp(-x.numpy()))}, got {x.grad}: "
    "Softplus.backward should return (grad_out · (1 − e^(−y)),)"
)

# %% [markdown]
# ## 2. The graph
#
# Every tensor made by a recorded op points at its node, `tensor.creator`, a `Context` that knows
# the `Function` that ran (`creator.function`) and the tensors it ran on (`creator.inputs`). Leaves
# (tensors you created, such as parameters) have `creator = None`. Let us follow
# `loss = sum(softplus(w · x) + b)` back to its leaves.

# %%
w = mt.tensor([0.5, -1.0, 2.0], requires_grad=True)
b = mt.tensor(0.1, requires_grad=True)
data = mt.tensor([1.0, 2.0, 3.0])  # an input: no gradient wanted
loss = (softplus(w * data) + b).sum()

node, path = loss, []
while node.creator is not None:
    path.append(node.creator.function.__name__)
    node = node.creator.inputs[0]  # follow the first input
print(" <- ".join(path), "<-", "leaf" if node is w else node)
assert path == ["Sum", "Add", "Softplus", "Mul"] and node is w and w.is_leaf

# %% [markdown]
# The `Add` node has two inputs: the softplus output and, because `b` has shape () and the sum
# has shape (3,), not `b` itself but a *broadcast copy* of `b`. We come back to that in section 6.

# %%
add_node = loss.creator.inputs[0].creator
print([(t.shape, t.creator.function.__name__) for t in add_node.inputs])
broadcast_b = add_node.inputs[1]
assert broadcast_b.creator.function.__name__ == "BroadcastTo"
assert broadcast_b.creator.inputs[0] is b

# %% [markdown]
# `mt.viz.draw_graph(tensor, path, names=...)` draws the whole graph after `backward`: ops in
# blue, leaves in yellow or grey, each box with its shape and ‖grad‖. Look for the `BroadcastTo` box
# between `b` and `Add`, and for the input `data`, which got no gradient at all.

# %%
loss.backward()
assert np.allclose(b.grad, 3.0)  # b reaches the sum through 3 broadcast copies
leaf_names = {"w": w, "b": b, "data": data}
dot = mt.viz.draw_graph(loss, names=leaf_names)  # the DOT text, for graphviz
assert "BroadcastTo" in dot and "Softplus" in dot
if HAS_MATPLOTLIB:
    mt.viz.draw_graph(loss, "ch03_graph.png", names=leaf_names)
    mt.viz.show("ch03_graph.png")
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# `backward` visits these nodes in reverse topological order (the iterative sort of Chapter 1),
# hands each node's `backward` its output's gradient, and checks that every returned gradient has
# its input's shape and dtype. A wrong shape is reported with the op's name:

# %%
class BadSum(Function):
    """A broken op: its backward forgets that the input had shape (2, 3)."""

    @staticmethod
    def forward(ctx, x):
        return x.sum(axis=0)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out,)  # shape (3,), but the input has shape (2, 3)


try:
    BadSum.apply(mt.ones(2, 3, requires_grad=True)).sum().backward()
except mt.ShapeError as error:
    print("ShapeError:", error)
    assert "BadSum.backward" in str(error)
else:
    raise AssertionError("the engine must reject a gradient of the wrong shape")

# %% [markdown]
# ## 3. A tensor used twice: gradients add up
#
# As in Chapter 1, a tensor that feeds several ops receives the **sum** of their gradients.
# For L = Σ (x ⊙ x + x) we expect ∂L/∂x = 2x + 1: the `Mul` contributes x twice (once per
# operand) and the `Add` contributes 1.

# %%
x = mt.tensor([2.0, 3.0], requires_grad=True)
(x * x + x).sum().backward()
print(x.grad)
assert np.array_equal(x.grad, 2 * x.numpy() + 1)

# %% [markdown]
# ## 4. Leaf gradients accumulate across backward calls: `zero_grad()`
#
# Each `backward` call **adds** into the `.grad` of every leaf; it does not overwrite. This is
# deliberate (it lets you sum gradients of several mini-batches before one update), and it means
# a training loop must clear the gradients before each step, with `zero_grad()` (`grad = None`).
# Gradients of intermediate tensors are not kept at all, unless you ask with `retain_grad()`.

# %%
x = mt.tensor([1.0, 2.0], requires_grad=True)
(3.0 * x).sum().backward()
print("after one backward:", x.grad)
(3.0 * x).sum().backward()
print("after two:", x.grad)  # 3 + 3
assert np.array_equal(x.grad, [6.0, 6.0])
x.zero_grad()
assert x.grad is None
(3.0 * x).sum().backward()
assert np.array_equal(x.grad, [3.0, 3.0])

# %% [markdown]
# ## 5. `no_grad` and `retain_graph`
#
# Recording a graph costs memory: every node keeps what its backward needs. When no gradient will
# be taken (evaluation, or updating parameters in place), run the code inside `mt.no_grad()`:
# results then have `requires_grad=False` and no creator.

# %%
x = mt.tensor([1.0, 2.0], requires_grad=True)
with mt.no_grad():
    y = softplus(x) * 2.0
print(y)
assert not y.requires_grad and y.creator is None
assert softplus(x).requires_grad  # recording is back on after the block

# %% [markdown]
# After backward, each node frees what it saved, since that is usually the largest part of the
# memory a step uses. A second backward through the same graph therefore fails with a
# `GraphFreedError`, unless the first call passed `retain_graph=True`.

# %%
x = mt.tensor([1.0, 2.0], requires_grad=True)
loss = softplus(x).sum()
loss.backward(retain_graph=True)  # keep the saved arrays ...
loss.backward()  # ... so a second pass works (and the leaf's grad accumulates)
assert np.allclose(x.grad, 2 / (1 + np.exp(-x.numpy()))), (
    f"after two backward passes x.grad should be 2·σ(x) = {2 / (1 + np.exp(-x.numpy()))}, "
    f"got {x.grad}: Softplus.backward should return (grad_out · (1 − e^(−y)),)"
)

try:
    loss.backward()  # the second call did not retain the graph
except mt.GraphFreedError as error:
    print("GraphFreedError:", error)
else:
    raise AssertionError("a freed graph must not be backpropagated again")

# %% [markdown]
# ## 6. Broadcasting enters the graph in one place
#
# When a (3,) bias is added to a (2, 3) batch, each bias value is used twice, once per row, so
# its gradient is the **sum** of the gradients of its copies (section 3 again). Rather than have
# every elementwise op undo broadcasts in its backward, minitransformer makes the broadcast an
# explicit op of its own, `BroadcastTo`:
#
#     forward:   (3,)  --repeat rows-->  (2, 3)
#     backward:  (2, 3) --sum_to((3,))-->  (3,)      sum over the axes that were repeated
#
# So `Add`, `Mul` and the rest can assume both inputs already have the same shape, and `sum_to` is
# the only "unbroadcast" in the library.

# %%
batch = mt.ones(2, 3)
bias = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
out = batch * 10.0 + bias
print([t.shape for t in out.creator.inputs], out.creator.inputs[1].creator.function.__name__)
upstream = np.arange(6.0, dtype=np.float32).reshape(2, 3)  # [[0, 1, 2], [3, 4, 5]]
out.backward(upstream)
print(bias.grad)
assert np.array_equal(bias.grad, upstream.sum(axis=0))  # [3, 5, 7]

# %% [markdown]
# `sum_to(grad, shape)` sums over the leading axes that broadcasting added and over the axes where
# `shape` has size 1, keeping those as size 1:

# %%
g = np.ones((4, 2, 3))
assert sum_to(g, (2, 3)).shape == (2, 3) and sum_to(g, (2, 3))[0, 0] == 4
assert sum_to(g, (2, 1)).shape == (2, 1) and sum_to(g, (2, 1))[0, 0] == 12
assert sum_to(g, (1, 1, 3)).shape == (1, 1, 3) and sum_to(g, (1, 1, 3))[0, 0, 0] == 8
print("sum_to checks pass")

# %% [markdown]
# ## 7. Gradient checking by hand
#
# A backward is a second, separate implementation of the derivative, so it can be wrong while the
# forward is right, and a wrong gradient does not crash: the model just trains badly. We test it
# against the definition of the derivative, using the forward alone.
#
# For an op y = f(x) with many outputs, pick an upstream gradient u (an array of y's shape) and
# look at the scalar L(x) = Σ uᵢ·f(x)ᵢ. Backward with `grad=u` gives the analytic ∂L/∂x. A
# central difference gives a numerical value for any one element j:
#
#     ∂L/∂xⱼ ≈ ( L(x + ε eⱼ) − L(x − ε eⱼ) ) / 2ε          (error O(ε²))
#
# where eⱼ is 1 at position j and 0 elsewhere. We do it in float64 (why, in section 9).

# %%
rng = np.random.default_rng(0)
x64 = mt.tensor(rng.standard_normal(5), requires_grad=True)  # a float64 array stays float64
u = rng.standard_normal(5)  # a random upstream gradient
softplus(x64).backward(u)


def weighted_output(values):
    """L(x) = Σ uᵢ · softplus(x)ᵢ, from the forward alone."""
    return float((u * softplus(mt.tensor(values)).data).sum())


eps, j = 1e-6, 2
plus, minus = x64.numpy(), x64.numpy()
plus[j] += eps
minus[j] -= eps
numeric = (weighted_output(plus) - weighted_output(minus)) / (2 * eps)
analytic = x64.grad[j]
print(f"analytic {analytic:.10f}   numeric {numeric:.10f}")
assert abs(analytic - numeric) < 1e-8, (
    f"analytic {analytic:.10f} and numeric {numeric:.10f} derivatives differ: "
    "Softplus.backward should return (grad_out · (1 − e^(−y)),)"
)

# %% [markdown]
# ## 8. `mt.gradcheck`
#
# `mt.gradcheck(fn, *inputs)` does this for every element of every floating input (for large
# inputs, along random directions instead), and returns `True`, or raises `mt.GradcheckError`
# with a report. It copies the inputs to float64 itself, so float32 inputs are fine, and it never
# modifies them.

# %%
mt.manual_seed(0)
x = mt.randn(*CHECK_SHAPE)
assert mt.gradcheck(softplus, x) is True
assert mt.gradcheck(lambda t: softplus(t).sum(axis=1) * t[:, 0], x)  # compositions too
print("softplus passes gradcheck on", CHECK_SHAPE)

# %% [markdown]
# Now a classic slip: writing the derivative as the *output* y instead of σ(x) (it is the right
# rule for `exp`, but not here). The forward is untouched, so nothing crashes; the checker finds it
# and names the input, the worst element, the analytic and numeric values and the tolerance.

# %%
class WrongSoftplus(Softplus):
    """The same forward; a backward with the wrong derivative (y instead of σ(x))."""

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        return (grad_out * y,)


try:
    mt.gradcheck(WrongSoftplus.apply, x)
except mt.GradcheckError as error:
    report = str(error)
    print(report)
else:
    raise AssertionError("gradcheck must catch the wrong derivative")
assert "input 0" in report and "analytic" in report and "numeric" in report

# %% [markdown]
# ## 9. Why float64, and why a random upstream gradient
#
# **float64.** A central difference subtracts two nearly equal numbers. Its *truncation* error
# shrinks like ε², but its *rounding* error grows like (machine epsilon)/ε. float32 carries about
# 7 significant digits (machine epsilon ≈ 1.2e-7), so with ε = 1e-6 the rounding error alone is
# of order 0.01 to 0.1: the estimate is noise. float64 (machine epsilon ≈ 2.2e-16) leaves room
# for an ε small enough to make both errors tiny. The derivative of tanh at 0.7 shows it:

# %%
exact = 1 - np.tanh(0.7) ** 2
print(" eps      float32 error   float64 error")
for eps in (1e-2, 1e-4, 1e-6):
    errors = []
    for dtype in (np.float32, np.float64):
        point, step = dtype(0.7), dtype(eps)
        estimate = (np.tanh(point + step) - np.tanh(point - step)) / (2 * step)
        errors.append(abs(float(estimate) - exact))
    print(f" {eps:.0e}   {errors[0]:.1e}         {errors[1]:.1e}")
assert errors[1] < 1e-9  # at eps = 1e-6, float64 is accurate ...
assert errors[0] > 1e-4  # ... and float32 is not

# %% [markdown]
# **A random upstream gradient.** Checking `f(x).sum()`, as is tempting, means u = 1 everywhere.
# Then every output element counts the same, and a backward that sends gradients to the *wrong
# positions* can pass. Here is an op that reverses a vector, with a backward that forgets to
# reverse the gradient back:

# %%
class WrongReverse(Function):
    """y = x[::-1]; the right backward is g[::-1], but this one returns g unchanged."""

    @staticmethod
    def forward(ctx, x):
        return x[::-1].copy()

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out,)  # wrong: should be grad_out[::-1]


v = mt.randn(6)
assert mt.gradcheck(lambda t: WrongReverse.apply(t).sum(), v)  # the sum cannot see the bug
try:
    mt.gradcheck(WrongReverse.apply, v)  # a random u weighs each position differently
except mt.GradcheckError as error:
    print("caught:", str(error)[:100], "...")
else:
    raise AssertionError("a random upstream gradient must expose the misplaced gradient")

# %% [markdown]
# This is why `mt.gradcheck` draws u at random (reproducibly, from its `seed`) for every output.
# It also re-seeds the shared generator before every forward, so an op that draws random numbers,
# such as dropout, makes the same draw in each of the many forward passes it compares.
#
# ## Summary
#
# - A `Function` is `forward` (arrays in, one array out, save what backward needs) directly above
#   `backward` (∂L/∂y in, ∂L/∂x for each input out); `apply` records the node for tensors.
# - The graph is reachable from any result: `creator.function`, `creator.inputs`, back to leaves.
# - Gradients add up, for a tensor used twice and for a leaf over several backward calls:
#   call `zero_grad()` between steps. `no_grad()` records nothing; `retain_graph=True` keeps the
#   saved arrays for a second backward.
# - Broadcasting is its own op, `BroadcastTo`, whose backward `sum_to` is the only unbroadcast.
# - Central differences in float64 with a random upstream gradient prove a backward right;
#   `mt.gradcheck` does it for every element and reports the worst mismatch.
#
# ## Exercises
#
# ```{exercise} Square, right and wrong
# :label: ch03-square
#
# Write `Square` (y = x², ∂L/∂x = 2gx) as a `Function`, pass it through `mt.gradcheck`, then
# break its backward in two different ways and read both reports.
# ```
#
# ````{solution} ch03-square
# :class: dropdown
#
# ```python
# class Square(Function):
#     """y = x²;  dL/dx = 2·g·x"""
#
#     @staticmethod
#     def forward(ctx, x):
#         ctx.save_for_backward(x)
#         return x * x
#
#     @staticmethod
#     def backward(ctx, grad_out):
#         (x,) = ctx.saved
#         return (2 * grad_out * x,)
#
#
# mt.manual_seed(0)
# x = mt.randn(3, 4)
# assert mt.gradcheck(Square.apply, x)
# ```
#
# Two typical slips, each a subclass that overrides `backward`: forgetting the factor 2
# (`grad_out * x`) and forgetting the upstream gradient (`2 * x`). With this seed both reports
# point at index (2, 1), where the numeric value is −3.04909:
#
#     forgot the 2:  analytic -1.52455 vs numeric -3.04909 (abs error 1.52, rel error 0.5; ...)
#     forgot g:      analytic 2.40955 vs numeric -3.04909 (abs error 5.46, rel error 1.79; ...)
#
# and both say "12 of 12 checked elements fail". A relative error of exactly 0.5 everywhere
# points at a missing constant factor; an analytic value of the wrong *sign* that does not scale
# with the numeric one points at a missing `grad_out` (here the random upstream gradient was
# negative at that element; with `.sum()`, i.e. g = 1, that bug would have passed).
# ````
#
# ```{exercise} Reverse and cumulative sum
# :label: ch03-reverse-cumsum
#
# Fix `WrongReverse` and check it. Then write `Cumsum` (y = cumulative sum along the last axis);
# what is its backward? (Hint: a reversed cumulative sum.)
# ```
#
# ````{solution} ch03-reverse-cumsum
# :class: dropdown
#
# The gradient must go back to the position each output came from, so the backward of a
# reversal is a reversal: `return (grad_out[::-1].copy(),)`, which passes
# `mt.gradcheck(Reverse.apply, mt.randn(6))`.
#
# For yᵢ = Σ_{j≤i} xⱼ, the input xⱼ feeds every yᵢ with i ≥ j, so
# ∂L/∂xⱼ = Σ_{i≥j} gᵢ: a cumulative sum taken from the *end*, i.e. flip, cumsum, flip.
#
# ```python
# class Cumsum(Function):
#     """y = cumsum(x, axis=-1);  dL/dx_j = sum over i >= j of g_i"""
#
#     @staticmethod
#     def forward(ctx, x):
#         return array_module(x).cumsum(x, axis=-1)
#
#     @staticmethod
#     def backward(ctx, grad_out):
#         xp = array_module(grad_out)
#         return (xp.flip(xp.cumsum(xp.flip(grad_out, -1), axis=-1), -1),)
#
#
# assert mt.gradcheck(Cumsum.apply, mt.randn(3, 5))
# ```
#
# Cumsum saves nothing for backward: it is linear, so its backward depends only on `grad_out`.
# ````
#
# ```{exercise} The best ε
# :label: ch03-best-eps
#
# Repeat the float32/float64 table of section 9 with ε from 1e-1 down to 1e-10 and find, for
# each dtype, the ε with the smallest error. Compare it with √(machine epsilon).
# ```
#
# ```{solution} ch03-best-eps
# :class: dropdown
#
# Measured errors of the central difference of tanh at 0.7:
#
# | ε | 1e-1 | 1e-2 | 1e-3 | 1e-4 | 1e-5 | 1e-6 | 1e-7 | 1e-8 |
# |---|---|---|---|---|---|---|---|---|
# | float32 | 2.0e-4 | **2.2e-6** | 9.8e-6 | 5.0e-5 | 5.0e-5 | 8.9e-3 | 2.6e-1 | 6.3e-1 |
# | float64 | 2.0e-4 | 2.0e-6 | 2.0e-8 | 2.0e-10 | **6.0e-13** | 1.7e-11 | 2.0e-10 | 4.2e-9 |
#
# (float32 stays at 0.63 below 1e-8: x ± ε rounds to x and the estimate is 0.) The best ε is
# 1e-2 for float32 and 1e-5 for float64, both *larger* than √(machine epsilon), which is 3.5e-4
# and 1.5e-8. √eps is the optimum of the one-sided difference, whose truncation error is O(ε);
# for the central difference the total error ~ ε² + eps/ε is smallest near ∛eps, which is 4.9e-3
# for float32 and 6.1e-6 for float64, matching the table. Note also the best errors themselves:
# about 1e-6 in float32 against 1e-12 in float64, the reason the checker works in float64.
# ```
#
# ```{exercise} Who sums for the broadcast
# :label: ch03-broadcast-grad
#
# Build `loss = (w * x).sum()` with a (4, 3) `x` and a (1, 3) `w`, and predict `w.grad` before
# running backward. Which op in `loss.creator`'s graph does the summing?
# ```
#
# ````{solution} ch03-broadcast-grad
# :class: dropdown
#
# Each wⱼ multiplies the four entries of column j, so ∂loss/∂wⱼ = Σᵢ xᵢⱼ: `w.grad` is the column
# sums of x, kept with shape (1, 3).
#
# ```python
# x = mt.arange(12.0).reshape(4, 3)
# w = mt.ones(1, 3, requires_grad=True)
# loss = (w * x).sum()
# mul = loss.creator.inputs[0].creator
# print(loss.creator.function.__name__, mul.function.__name__,
#       [t.creator.function.__name__ if t.creator else "leaf" for t in mul.inputs])
# # Sum Mul ['BroadcastTo', 'leaf']
# loss.backward()
# print(w.grad)  # [[18. 22. 26.]] = x.sum(axis=0, keepdims=True)
# ```
#
# The graph is Sum ← Mul ← BroadcastTo ← w. `Mul`'s backward returns a (4, 3) gradient for the
# broadcast copy of `w`; the summing over the 4 rows happens in `BroadcastTo`'s backward, which
# calls `sum_to(grad, (1, 3))`. (With a float64 `x` you would also see a `Cast` node between `w`
# and the broadcast, since float32 `w` is promoted.)
# ````
