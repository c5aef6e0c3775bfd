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
# # Chapter 1 — Autograd from scratch on scalars
#
# Training a network means nudging every parameter against the gradient of a loss. Writing those
# gradients by hand for millions of parameters is impossible; *reverse-mode automatic
# differentiation* (autograd) computes all of them in one backward pass that costs about as much
# as the forward pass.
#
# In this chapter we build autograd ourselves, on plain Python numbers, in about sixty lines.
# Everything minitransformer does later is this same idea applied to arrays.
#
# **Learning objectives.** After this chapter you can
#
# 1. explain the chain rule as "local derivative × gradient from above";
# 2. record a computation as a graph of `Value` nodes and backpropagate through it;
# 3. explain why gradients *accumulate* (`+=`) when a value is used twice;
# 4. order the nodes with an *iterative* topological sort, and say why recursion is not enough;
# 5. check gradients against finite differences;
# 6. get the very same numbers from `minitransformer` tensors.

# %%
import math
import os
import sys

import minitransformer as mt

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # smaller demos when set

# %% [markdown]
# ## 1. The chain rule, one node at a time
#
# Take a computation as a chain of small steps, each with a derivative we know:
#
#     x ──f──▶ u ──g──▶ L          L = g(f(x))
#
# The chain rule says
#
#     dL/dx = dL/du · du/dx
#
# Read it from the right: `dL/du` is the gradient that arrives *from above* (from the loss), and
# `du/dx` is the *local* derivative of the one step `u = f(x)`. So every node only needs to know
# its own local derivative; it multiplies the gradient it receives by it and passes the result
# down to its inputs. The local derivatives we need:
#
# | step          | local derivatives                           |
# |---------------|---------------------------------------------|
# | `c = a + b`   | ∂c/∂a = 1,  ∂c/∂b = 1                       |
# | `c = a · b`   | ∂c/∂a = b,  ∂c/∂b = a                       |
# | `c = tanh(a)` | ∂c/∂a = 1 − tanh²(a) = 1 − c²               |
# | `c = eᵃ`      | ∂c/∂a = eᵃ = c                              |
#
# If a value feeds several steps, its gradient is the **sum** of what each step sends back
# (the multivariable chain rule). That is why backward code writes `+=`, never `=`.
#
# ## 2. A `Value`: a number that remembers where it came from
#
# A `Value` holds a number (`data`), the gradient of the final output with respect to it
# (`grad`, 0 until backward runs), the Values it was computed from (`parents`), and a small
# function `backward_step` that pushes its own `grad` into its parents' `grad`s.
#
# The operators only call the functions `add`, `mul`, `tanh` and `exp` defined in the next cells
# (Python looks those names up when an operator runs, not when the class is defined).
# minitransformer's `Tensor` is organised the same way: its methods call the op functions.

# %%
class Value:
    """A scalar that records how it was computed, so gradients can flow back through it."""

    def __init__(self, data, parents=(), op=""):
        self.data = float(data)
        self.grad = 0.0  # dOutput/dSelf, filled in by backward()
        self.parents = parents  # the Values this one was computed from
        self.op = op  # "+", "*", "tanh", "exp", or "" for an input
        self.backward_step = lambda: None  # an input has nobody to pass gradients to

    def __repr__(self):
        return f"Value(data={self.data:.4f}, grad={self.grad:.4f})"

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):  # 2 + v
        return add(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):  # 2 * v
        return mul(other, self)


# %% [markdown]
# Each operation computes its result *and* installs the backward step for that result. Notice
# that `backward_step` reads `out.grad` when it *runs*, which is after backward has filled it in.

# %%
def as_value(x):
    """Wrap plain numbers so `v + 1` and `2 * v` work."""
    return x if isinstance(x, Value) else Value(x)


def add(a, b):
    a, b = as_value(a), as_value(b)
    out = Value(a.data + b.data, (a, b), "+")

    def backward_step():
        a.grad += 1.0 * out.grad  # ∂out/∂a = 1
        b.grad += 1.0 * out.grad  # ∂out/∂b = 1

    out.backward_step = backward_step
    return out


# %%
def mul(a, b):
    a, b = as_value(a), as_value(b)
    out = Value(a.data * b.data, (a, b), "*")

    def backward_step():
        # BEGIN SOLUTION
        a.grad += b.data * out.grad  # ∂out/∂a = b
        b.grad += a.data * out.grad  # ∂out/∂b = a
        # END SOLUTION

    out.backward_step = backward_step
    return out


# %%
def tanh(a):
    a = as_value(a)
    out = Value(math.tanh(a.data), (a,), "tanh")

    def backward_step():
        # BEGIN SOLUTION
        a.grad += (1.0 - out.data**2) * out.grad  # 1 - tanh²: written with the output
        # END SOLUTION

    out.backward_step = backward_step
    return out


# %%
def exp(a):
    a = as_value(a)
    out = Value(math.exp(a.data), (a,), "exp")

    def backward_step():
        a.grad += out.data * out.grad  # (eᵃ)' = eᵃ, again the output

    out.backward_step = backward_step
    return out


# %% [markdown]
# ## 3. Backward: visit the nodes in reverse topological order
#
# A node may pass its gradient down only once it has received *everything* from above, i.e.
# after every node that uses it has run its own step. A **topological order** lists each node after
# all of its parents; walking it *backwards* from the output gives exactly that guarantee.
#
# The textbook way to produce the order is a recursive depth-first search. But Python stops
# recursion at about a thousand frames (`sys.getrecursionlimit()`), and a deep network, or an RNN
# unrolled over a long sequence, easily makes a graph deeper than that. So we keep our own stack.
# Each node goes on the stack twice: once to *expand* it (push its parents) and once, underneath
# its parents, to *emit* it after they are all done.

# %%
def topological_order(root):
    """Every Value that `root` depends on, each listed after all of its parents (no recursion)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)  # all parents were emitted before we got back here
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))  # emit later, once the parents are done
            stack.extend((parent, False) for parent in node.parents)
    return order


# %%
def backward(root):
    """Fill `.grad` of every Value `root` depends on with d(root)/d(that value)."""
    for node in topological_order(root):
        node.grad = 0.0  # start clean (minitransformer's leaves accumulate: Chapter 3)
    root.grad = 1.0  # d(root)/d(root)
    for node in reversed(topological_order(root)):
        node.backward_step()


# %% [markdown]
# ## 4. The chain rule on a small expression
#
# Take a = 2, b = −3, c = 10 and
#
#     f = (a·b + c) · a = a²b + ac
#
# By hand: ∂f/∂a = 2ab + c = −2, ∂f/∂b = a² = 4, ∂f/∂c = a = 2.
#
# Note that `a` is used twice: once inside `a·b` and once in the outer product, so its gradient is
# the sum of the contributions along both paths. Let the code do the bookkeeping:

# %%
a, b, c = Value(2.0), Value(-3.0), Value(10.0)
e = a * b  # -6
d = e + c  # 4
f = d * a  # 8
backward(f)
print("f =", f.data)
print("df/da =", a.grad, " df/db =", b.grad, " df/dc =", c.grad)
assert f.data == 8.0
assert (a.grad, b.grad, c.grad) == (-2.0, 4.0, 2.0), (
    f"(df/da, df/db, df/dc) should be (-2, 4, 2), got {(a.grad, b.grad, c.grad)}: in mul's "
    "backward_step each input gets the *other* factor times out.grad, added with +="
)

# %% [markdown]
# The two contributions to `a.grad` are `d = 4` (from `f = d·a`) and `b · ∂f/∂e = −3 · 2 = −6`
# (from `e = a·b`, where ∂f/∂e = ∂f/∂d = a = 2): together −2. Had `mul` written `=` instead of
# `+=`, the second contribution would have overwritten the first. Let us check the intermediate
# gradients too:

# %%
print("df/dd =", d.grad, " df/de =", e.grad)
assert d.grad == a.data, (  # ∂f/∂d = a
    f"df/dd should be a = {a.data}, got {d.grad}: mul's backward_step should add "
    "b.data * out.grad to a.grad (∂out/∂a = b), and a.data * out.grad to b.grad"
)
assert e.grad == d.grad  # addition passes the gradient through unchanged
assert a.grad == d.data + b.data * e.grad, (  # the two paths into `a`, added
    f"a.grad should be the sum of both paths, d + b·(df/de) = {d.data + b.data * e.grad}, "
    f"got {a.grad}: does mul's backward_step add (+=) the other factor times out.grad?"
)

# %% [markdown]
# ## 5. A neuron with two inputs
#
# A neuron weighs its inputs, adds a bias and squashes the sum:
#
#     n = x₁w₁ + x₂w₂ + b,      o = tanh(n)
#
# Backward gives ∂o/∂wᵢ = (1 − o²) · xᵢ and ∂o/∂b = 1 − o². The numbers below are chosen so that
# n = 0.8814, where tanh(n) = 1/√2 and 1 − o² = 0.5, which makes the gradients easy to read.

# %%
def neuron(x1, x2, w1, w2, bias):
    n = x1 * w1 + x2 * w2 + bias
    return tanh(n)


x1, x2 = Value(2.0), Value(0.0)
w1, w2 = Value(-3.0), Value(1.0)
bias = Value(6.881373587019543)
o = neuron(x1, x2, w1, w2, bias)
backward(o)
print(o)
for name, v in [("x1", x1), ("x2", x2), ("w1", w1), ("w2", w2), ("b", bias)]:
    print(f"do/d{name} = {v.grad:+.4f}")
assert math.isclose(o.data, 1 / math.sqrt(2))
assert math.isclose(bias.grad, 0.5), (
    f"do/db should be 1 − o² = 0.5, got {bias.grad}: tanh's backward_step should add "
    "(1 − out.data**2) * out.grad to a.grad (the local derivative uses the output)"
)
assert math.isclose(w1.grad, 0.5 * x1.data) and math.isclose(w2.grad, 0.5 * x2.data), (
    f"do/dwᵢ should be (1 − o²)·xᵢ = {(0.5 * x1.data, 0.5 * x2.data)}, got "
    f"{(w1.grad, w2.grad)}: check the backward_step of mul (∂/∂w = x) and of tanh (1 − o²)"
)
assert math.isclose(x1.grad, 0.5 * w1.data) and math.isclose(x2.grad, 0.5 * w2.data), (
    f"do/dxᵢ should be (1 − o²)·wᵢ = {(0.5 * w1.data, 0.5 * w2.data)}, got "
    f"{(x1.grad, x2.grad)}: check the backward_step of mul (∂/∂x = w) and of tanh (1 − o²)"
)

# %% [markdown]
# ## 6. Checking against finite differences
#
# How do we know our backward steps are right? The derivative is a limit, so we can approximate
# it from the forward computation alone with a **central difference**:
#
#     ∂f/∂xᵢ ≈ ( f(…, xᵢ + ε, …) − f(…, xᵢ − ε, …) ) / 2ε
#
# Its error shrinks like ε² (the one-sided version only like ε). It costs two forward passes per
# input, hopeless for a million parameters but perfect for testing. We check the neuron, and an
# expression that uses all four operations, `g = exp(a·b) · tanh(a + c) + b`.

# %%
def numeric_gradients(fn, values, eps=1e-6):
    """Central differences of fn (a function of floats) with respect to each input."""
    grads = []
    for i in range(len(values)):
        plus, minus = list(values), list(values)
        plus[i] += eps
        minus[i] -= eps
        grads.append((fn(*plus) - fn(*minus)) / (2 * eps))
    return grads


# %%
def analytic_gradients(fn, values):
    """Our autograd: wrap the floats in Values, run fn, backpropagate."""
    inputs = [Value(v) for v in values]
    backward(fn(*inputs))
    return [v.grad for v in inputs]


def float_version(fn):
    """Run fn on Values but return a plain float (for the finite differences)."""
    return lambda *floats: fn(*[Value(v) for v in floats]).data


# %%
def g_expression(a, b, c):
    return exp(a * b) * tanh(a + c) + b


checks = [
    ("neuron", neuron, [2.0, 0.0, -3.0, 1.0, 6.881373587019543]),
    ("g", g_expression, [0.5, -1.2, 0.3]),
]
for name, fn, point in checks:
    analytic = analytic_gradients(fn, point)
    numeric = numeric_gradients(float_version(fn), point)
    worst = max(abs(p - q) for p, q in zip(analytic, numeric))
    print(f"{name}: worst |analytic - numeric| = {worst:.2e}")
    assert worst < 1e-6, (
        f"{name}: a backward_step is wrong, check mul (other factor × out.grad) and tanh "
        f"((1 − out²) × out.grad): autograd gives {[round(v, 6) for v in analytic]}, finite "
        f"differences {[round(v, 6) for v in numeric]}"
    )

# %% [markdown]
# ## 7. Why the sort must be iterative
#
# Here is the same depth-first search written recursively. It reads nicely, but a chain of a few
# thousand operations is enough to break it.

# %%
def topological_order_recursive(root):
    order, visited = [], set()

    def visit(node):
        if id(node) not in visited:
            visited.add(id(node))
            for parent in node.parents:
                visit(parent)
            order.append(node)

    visit(root)
    return order


# %%
depth = 5_000 if FAST else 50_000  # both are far deeper than Python's recursion limit
start = Value(1.0)
y = start
for _ in range(depth):
    y = y * 1.00001  # y = 1.00001 ** depth, one node per multiplication

try:
    topological_order_recursive(y)
    recursion_failed = False
except RecursionError:
    recursion_failed = True
print(f"depth {depth}, recursion limit {sys.getrecursionlimit()}: "
      f"recursive sort failed = {recursion_failed}")
assert recursion_failed

backward(y)  # the iterative version has no trouble
assert math.isclose(start.grad, 1.00001**depth, rel_tol=1e-9), (
    f"dy/dstart should be 1.00001**{depth} = {1.00001**depth:.6f}, got {start.grad:.6f}: "
    "mul's backward_step should add b.data * out.grad to a.grad"
)
print(f"dy/dstart = {start.grad:.6f} (expected {1.00001**depth:.6f})")

# %% [markdown]
# (The derivative of `start · 1.00001ⁿ` with respect to `start` is simply `1.00001ⁿ`.)
#
# ## 8. The same computation in minitransformer
#
# minitransformer's tensors carry the same machinery: `requires_grad=True` marks an input whose
# gradient we want, every operation records a node, `.backward()` runs the reverse sweep with an
# iterative topological sort, and `.grad` holds the result. The difference is that each node works
# on a whole array at once, which we use from Chapter 2 on. For now, scalars (0-d tensors):

# %%
ta = mt.tensor(2.0, requires_grad=True)
tb = mt.tensor(-3.0, requires_grad=True)
tc = mt.tensor(10.0, requires_grad=True)
tf = (ta * tb + tc) * ta
tf.backward()
print(tf, ta.grad, tb.grad, tc.grad)
assert tf.item() == f.data
assert (float(ta.grad), float(tb.grad), float(tc.grad)) == (a.grad, b.grad, c.grad), (
    f"our gradients {(a.grad, b.grad, c.grad)} differ from minitransformer's "
    f"{(float(ta.grad), float(tb.grad), float(tc.grad))}: check mul's backward_step"
)

# %% [markdown]
# And the neuron, this time with the two inputs and two weights as vectors, so that
# `x₁w₁ + x₂w₂` becomes `(x * w).sum()`. Tensors use float32 by default (Chapter 2), so we compare
# with a relative tolerance suited to float32's ~7 significant digits.

# %%
x = mt.tensor([2.0, 0.0], requires_grad=True)
w = mt.tensor([-3.0, 1.0], requires_grad=True)
tbias = mt.tensor(6.881373587019543, requires_grad=True)
to = ((x * w).sum() + tbias).tanh()
to.backward()
print("output:", to.item(), " w.grad:", w.grad, " x.grad:", x.grad, " b.grad:", tbias.grad)


def close(p, q):
    return math.isclose(p, q, rel_tol=1e-5, abs_tol=1e-6)


assert close(to.item(), o.data)
assert close(float(tbias.grad), bias.grad), (
    f"our do/db = {bias.grad} differs from minitransformer's {float(tbias.grad)}: check "
    "tanh's backward_step, (1 − out.data**2) * out.grad"
)
assert all(close(float(t), v.grad) for t, v in zip(w.grad, [w1, w2])), (
    f"our do/dw = {[w1.grad, w2.grad]} differs from minitransformer's {w.grad}: check the "
    "backward_step of mul and of tanh"
)
assert all(close(float(t), v.grad) for t, v in zip(x.grad, [x1, x2])), (
    f"our do/dx = {[x1.grad, x2.grad]} differs from minitransformer's {x.grad}: check the "
    "backward_step of mul and of tanh"
)

# %% [markdown]
# Finally the expression `g`, written with minitransformer's `exp` and `tanh`. The functional form
# `mt.exp(t)` and the method form `t.exp()` run the same code.

# %%
point = [0.5, -1.2, 0.3]
ga, gb, gc = (mt.tensor(v, requires_grad=True) for v in point)
tg = mt.exp(ga * gb) * (ga + gc).tanh() + gb
tg.backward()
ours = analytic_gradients(g_expression, point)
theirs = [float(t.grad) for t in (ga, gb, gc)]
print("Value autograd:   ", [f"{v:+.6f}" for v in ours])
print("minitransformer:  ", [f"{v:+.6f}" for v in theirs])
assert all(close(p, q) for p, q in zip(ours, theirs)), (
    f"our gradients of g {ours} differ from minitransformer's {theirs}: check the "
    "backward_step of mul and of tanh"
)

# %% [markdown]
# ## Summary
#
# - The chain rule turns differentiation into local work: each node multiplies the gradient from
#   above by its own local derivative and hands the result to its inputs.
# - Recording a computation as a graph and visiting it in reverse topological order computes the
#   gradient with respect to *every* input in one backward pass.
# - Gradients accumulate: a value used twice receives the sum of both contributions (`+=`).
# - The topological sort must be iterative; recursion breaks on graphs a few thousand nodes deep.
# - Central differences, `(f(x+ε) − f(x−ε)) / 2ε`, check any backward against its forward.
# - `mt.tensor(..., requires_grad=True)`, `.backward()` and `.grad` do the same for arrays.
#
# ## Exercises
#
# ```{exercise} Negation, subtraction and powers
# :label: ch01-neg-sub-pow
#
# Add `__neg__`, `__sub__` and `__pow__` (with a number exponent) to `Value`, each with its
# backward step, and check them with `numeric_gradients`.
# ```
#
# ````{solution} ch01-neg-sub-pow
# :class: dropdown
#
# Negation and subtraction need no new backward step: −a = a · (−1) and a − b = a + (−b) reuse
# `mul` and `add`, whose backward steps are already right. A power aⁿ with a fixed number n is a
# new operation with local derivative n·aⁿ⁻¹:
#
# ```python
# def power(a, n):
#     a = as_value(a)
#     out = Value(a.data**n, (a,), f"**{n}")
#
#     def backward_step():
#         a.grad += n * a.data ** (n - 1) * out.grad  # d(aⁿ)/da = n·aⁿ⁻¹
#
#     out.backward_step = backward_step
#     return out
#
#
# Value.__neg__ = lambda self: mul(self, -1.0)
# Value.__sub__ = lambda self, other: add(self, -as_value(other))
# Value.__rsub__ = lambda self, other: add(other, -self)
# Value.__pow__ = power
#
#
# def h(a, b):
#     return (a - b) ** 3 + (-a) ** 2 - b**0.5
#
#
# point = [1.5, 0.7]
# print(analytic_gradients(h, point))                 # [4.92, -2.5176...]
# print(numeric_gradients(float_version(h), point))   # agrees to about 1e-10
# ```
#
# By hand: ∂h/∂a = 3(a − b)² + 2a = 3·0.64 + 3 = 4.92, and
# ∂h/∂b = −3(a − b)² − 1/(2√b) = −1.92 − 0.5976 = −2.5176.
# ````
#
# ```{exercise} Overwriting instead of accumulating
# :label: ch01-plus-equals
#
# Change `+=` to `=` in `mul`'s backward step and rerun section 4. Which gradient goes wrong,
# and why exactly that one?
# ```
#
# ```{solution} ch01-plus-equals
# :class: dropdown
#
# Only `a.grad` goes wrong: it becomes −6 instead of −2, while ∂f/∂b = 4 and ∂f/∂c = 2 stay
# right. `a` is the only value used twice, so it is the only one that receives two
# contributions. The reverse sweep runs `f = d·a` first, which sets `a.grad = d = 4`; later
# `e = a·b` runs and, with `=`, *replaces* it by `b · ∂f/∂e = −3 · 2 = −6` instead of adding
# −6 to 4. Every other value has a single consumer, so for it `=` and `+=` (onto a fresh 0)
# give the same result.
# ```
#
# ```{exercise} Two ways to write the sigmoid
# :label: ch01-sigmoid
#
# Write `sigmoid(a) = 1 / (1 + e^{-a})` once as a composition of existing operations and once as
# a single new operation whose backward step uses σ' = σ(1 − σ). Check that both agree with
# finite differences and with `mt.sigmoid`.
# ```
#
# ````{solution} ch01-sigmoid
# :class: dropdown
#
# The composition needs one more elementary operation, the reciprocal 1/x with derivative
# −1/x² = −out²; the fused version stores σ and uses σ(1 − σ):
#
# ```python
# def reciprocal(a):
#     a = as_value(a)
#     out = Value(1.0 / a.data, (a,), "1/x")
#
#     def backward_step():
#         a.grad += -(out.data**2) * out.grad
#
#     out.backward_step = backward_step
#     return out
#
#
# def sigmoid_composed(a):
#     return reciprocal(1.0 + exp(a * -1.0))
#
#
# def sigmoid(a):
#     a = as_value(a)
#     s = 1.0 / (1.0 + math.exp(-a.data))
#     out = Value(s, (a,), "sigmoid")
#
#     def backward_step():
#         a.grad += s * (1.0 - s) * out.grad
#
#     out.backward_step = backward_step
#     return out
#
#
# t = mt.tensor(0.7, requires_grad=True)
# mt.sigmoid(t).backward()
# for fn in (sigmoid_composed, sigmoid):
#     print(fn(Value(0.7)).data, analytic_gradients(fn, [0.7]),
#           numeric_gradients(float_version(fn), [0.7]), float(t.grad))
# ```
#
# At a = 0.7 both give σ = 0.668188 and σ' = 0.2217129, the finite difference agrees to about
# 1e-11, and `mt.sigmoid` (float32) gives the same to about 7 digits. The fused node is one
# node instead of four, and its backward needs no division.
# ````
#
# ```{exercise} Train the neuron
# :label: ch01-train-neuron
#
# Train the neuron: starting from `w1 = w2 = b = 0`, take 50 gradient-descent steps (learning
# rate 0.1) on the loss `(o − 0.5)²` for the input `(2, 0)`. Remember to reset the gradients
# between steps (our `backward` already does; minitransformer's leaves do not, see Chapter 3).
# ```
#
# ````{solution} ch01-train-neuron
# :class: dropdown
#
# ```python
# w1, w2, b = Value(0.0), Value(0.0), Value(0.0)
# for step in range(50):
#     o = neuron(Value(2.0), Value(0.0), w1, w2, b)
#     loss = (o + -0.5) * (o + -0.5)
#     backward(loss)  # resets every .grad to 0 before the sweep
#     for p in (w1, w2, b):
#         p.data -= 0.1 * p.grad
# print(loss.data, o.data, w1.data, w2.data, b.data)
# ```
#
# With learning rate 0.1 the loss falls from 0.25 at the first step to about 2e-9 after ten
# steps, and `o` ends at 0.5 to machine precision: w₁ ≈ 0.21972, b ≈ 0.10986, so
# n = 2w₁ + b = 0.5493 = atanh(0.5). `w2` never moves, because its gradient is x₂ · (…) = 0
# for the input x₂ = 0. Many (w₁, b) solve the problem; gradient descent from zero finds the one
# where b = w₁/2, because at every step ∂L/∂w₁ = 2 · ∂L/∂b (x₁ = 2).
# ````
