# %% setup
# Chapter 1's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# The chapter's scalar autograd is repeated here (Value, add, mul, tanh, exp, backward and the
# finite-difference helpers), so that every exercise runs on its own.
import math

import minitransformer as mt


class Value:
    """A scalar that records how it was computed, so gradients can flow back through it."""

    def __init__(self, data, parents=(), op=""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = parents
        self.op = op
        self.backward_step = lambda: None

    def __repr__(self):
        return f"Value(data={self.data:.4f}, grad={self.grad:.4f})"

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)


def as_value(x):
    return x if isinstance(x, Value) else Value(x)


def add(a, b):
    a, b = as_value(a), as_value(b)
    out = Value(a.data + b.data, (a, b), "+")

    def backward_step():
        a.grad += out.grad
        b.grad += out.grad

    out.backward_step = backward_step
    return out


def mul(a, b):
    a, b = as_value(a), as_value(b)
    out = Value(a.data * b.data, (a, b), "*")

    def backward_step():
        a.grad += b.data * out.grad
        b.grad += a.data * out.grad

    out.backward_step = backward_step
    return out


def tanh(a):
    a = as_value(a)
    out = Value(math.tanh(a.data), (a,), "tanh")

    def backward_step():
        a.grad += (1.0 - out.data**2) * out.grad

    out.backward_step = backward_step
    return out


def exp(a):
    a = as_value(a)
    out = Value(math.exp(a.data), (a,), "exp")

    def backward_step():
        a.grad += out.data * out.grad

    out.backward_step = backward_step
    return out


def topological_order(root):
    """Every Value that `root` depends on, each listed after all of its parents."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in visited:
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.parents)
    return order


def backward(root):
    """Fill `.grad` of every Value `root` depends on with d(root)/d(that value)."""
    for node in topological_order(root):
        node.grad = 0.0
    root.grad = 1.0
    for node in reversed(topological_order(root)):
        node.backward_step()


def numeric_gradients(fn, values, eps=1e-6):
    """Central differences of fn (a function of floats) with respect to each input."""
    grads = []
    for i in range(len(values)):
        plus, minus = list(values), list(values)
        plus[i] += eps
        minus[i] -= eps
        grads.append((fn(*plus) - fn(*minus)) / (2 * eps))
    return grads


def analytic_gradients(fn, values):
    """Our autograd: wrap the floats in Values, run fn, backpropagate."""
    inputs = [Value(v) for v in values]
    backward(fn(*inputs))
    return [v.grad for v in inputs]


def float_version(fn):
    """Run fn on Values but return a plain float (for the finite differences)."""
    return lambda *floats: fn(*[Value(v) for v in floats]).data


def neuron(x1, x2, w1, w2, bias):
    return tanh(x1 * w1 + x2 * w2 + bias)


# %% exercise ch01-neg-sub-pow (2 points)
# power(a, n) -> Value: a ** n for a Value (or number) a and a fixed number n, one new node
# whose backward_step adds d(aⁿ)/da · out.grad to a.grad.
# Then give Value the operators -v (__neg__), v - w (__sub__), 2 - v (__rsub__) and v ** n
# (__pow__, n a number), e.g. with `Value.__neg__ = lambda self: ...` and `Value.__pow__ = power`.
# BEGIN SOLUTION
def power(a, n):
    a = as_value(a)
    out = Value(a.data**n, (a,), f"**{n}")

    def backward_step():
        a.grad += n * a.data ** (n - 1) * out.grad  # d(aⁿ)/da = n·aⁿ⁻¹

    out.backward_step = backward_step
    return out


Value.__neg__ = lambda self: mul(self, -1.0)  # −a = a · (−1): mul's backward is already right
Value.__sub__ = lambda self, other: add(self, -as_value(other))
Value.__rsub__ = lambda self, other: add(other, -self)
Value.__pow__ = power
# END SOLUTION

# %% check ch01-neg-sub-pow
for name, fn, want in [("-v", lambda v: -v, -1.5), ("v - 0.5", lambda v: v - 0.5, 1.0),
                       ("2 - v", lambda v: 2 - v, 0.5), ("v ** 3", lambda v: v**3, 3.375)]:
    got = fn(Value(1.5))
    assert isinstance(got, Value), f"{name} should give a Value, not {type(got).__name__}"
    assert math.isclose(got.data, want), f"{name} for v = 1.5 gives {got.data}, not {want}"
for name, fn, point in [("-a", lambda a: -a, [1.5]), ("a - b", lambda a, b: a - b, [1.5, 0.7]),
                        ("3 - a", lambda a: 3 - a, [1.5]),
                        ("a ** 3", lambda a: a**3, [1.5]), ("a ** 0.5", lambda a: a**0.5, [0.7]),
                        ("(a - b) ** 3 + (-a) ** 2 - b ** 0.5",
                         lambda a, b: (a - b) ** 3 + (-a) ** 2 - b**0.5, [1.5, 0.7])]:
    analytic = analytic_gradients(fn, point)
    numeric = numeric_gradients(float_version(fn), point)
    assert all(abs(p - q) < 1e-5 for p, q in zip(analytic, numeric)), (
        f"the gradients of {name} at {point} are {[round(g, 6) for g in analytic]} by backward "
        f"but {[round(g, 6) for g in numeric]} by finite differences: check the backward step "
        "(d(aⁿ)/da = n·aⁿ⁻¹; −a and a − b can reuse mul and add)")

# %% wrong ch01-neg-sub-pow
def power(a, n):  # noqa: F811  (the exponent not lowered: n·aⁿ instead of n·aⁿ⁻¹)
    a = as_value(a)
    out = Value(a.data**n, (a,), f"**{n}")

    def backward_step():
        a.grad += n * a.data**n * out.grad

    out.backward_step = backward_step
    return out


Value.__pow__ = power

# %% wrong ch01-neg-sub-pow
Value.__rsub__ = lambda self, other: add(self, -as_value(other))  # computes v − 2, not 2 − v

# %% exercise ch01-plus-equals (2 points)
# mul_overwrite(a, b) -> Value: the chapter's mul, but its backward_step writes `=` instead of
# `+=` into a.grad and b.grad.
# grads_overwrite: (df/da, df/db, df/dc), floats, for f = (a·b + c)·a at a = 2, b = −3, c = 10,
# built with mul_overwrite for both products (and add for the sum), after backward(f).
# wrong_gradient: "a", "b" or "c", the one of the three that the overwrite makes wrong.
# lost_contribution: float, the contribution to df/da that the overwrite throws away.
# BEGIN SOLUTION
def mul_overwrite(a, b):
    a, b = as_value(a), as_value(b)
    out = Value(a.data * b.data, (a, b), "*")

    def backward_step():
        a.grad = b.data * out.grad
        b.grad = a.data * out.grad

    out.backward_step = backward_step
    return out


a, b, c = Value(2.0), Value(-3.0), Value(10.0)
f = mul_overwrite(add(mul_overwrite(a, b), c), a)
backward(f)
grads_overwrite = (a.grad, b.grad, c.grad)  # (-6.0, 4.0, 2.0)
wrong_gradient = "a"  # the only value used twice, so the only one with two contributions
# The sweep runs f = d·a first (a.grad = d = 4), then e = a·b replaces it by b·∂f/∂e = −6.
lost_contribution = 4.0
# END SOLUTION

# %% check ch01-plus-equals
x, y = Value(1.5), Value(-2.0)
product = mul_overwrite(x, y)
assert math.isclose(product.data, -3.0), f"mul_overwrite(1.5, -2) gives {product.data}, not -3"
backward(add(product, 1.0))
assert (x.grad, y.grad) == (-2.0, 1.5), (
    f"for a single product x·y, mul_overwrite gives (d/dx, d/dy) = {(x.grad, y.grad)}, not "
    "(y, x) = (-2.0, 1.5): only `+=` should become `=`, the local derivatives stay")
a, b, c = Value(2.0), Value(-3.0), Value(10.0)
f = mul_overwrite(add(mul_overwrite(a, b), c), a)
backward(f)
measured = (a.grad, b.grad, c.grad)
right = tuple(analytic_gradients(lambda a, b, c: (a * b + c) * a, [2.0, -3.0, 10.0]))
assert measured != right, (
    f"with mul_overwrite the gradients are still right, {measured}: its backward_step should "
    "write `a.grad = ...` and `b.grad = ...`, not add to them")
assert len(grads_overwrite) == 3 and all(
    math.isclose(g, m) for g, m in zip(grads_overwrite, measured)), (
    f"grads_overwrite is {grads_overwrite}, but f = mul_overwrite(add(mul_overwrite(a, b), c), "
    f"a) gives {measured}: run backward(f) and read a.grad, b.grad, c.grad")
wrong = [name for name, g, r in zip("abc", measured, right) if g != r]
assert wrong_gradient in ("a", "b", "c") and [wrong_gradient] == wrong, (
    f"wrong_gradient is {wrong_gradient!r}, but that gradient comes out the same with `=` as "
    "with `+=`: compare grads_overwrite with the gradients of section 4 (which value is used "
    "twice?)")
assert math.isclose(lost_contribution, right[0] - measured[0]), (
    f"lost_contribution is {lost_contribution}: with `+=`, df/da is the sum of what the two "
    "paths into a contribute; the overwrite keeps only the one whose backward step runs last "
    "(e = a·b). What did the other path, f = d·a, contribute?")

# %% wrong ch01-plus-equals
wrong_gradient = "b"  # a guess: b sits in both products

# %% wrong ch01-plus-equals
lost_contribution = -6.0  # the contribution that was kept, not the one that was lost

# %% exercise ch01-sigmoid (2 points)
# reciprocal(a) -> Value: 1 / a, one node (local derivative −1/a² = −out²).
# sigmoid_composed(a) -> Value: 1 / (1 + e^(−a)) built from the existing operations
# (add, mul, exp) and reciprocal, so several nodes.
# sigmoid(a) -> Value: the same function as ONE node whose parent is a, with a backward_step
# that uses σ' = σ(1 − σ).
# BEGIN SOLUTION
def reciprocal(a):
    a = as_value(a)
    out = Value(1.0 / a.data, (a,), "1/x")

    def backward_step():
        a.grad += -(out.data**2) * out.grad

    out.backward_step = backward_step
    return out


def sigmoid_composed(a):
    return reciprocal(1.0 + exp(a * -1.0))


def sigmoid(a):
    a = as_value(a)
    s = 1.0 / (1.0 + math.exp(-a.data))
    out = Value(s, (a,), "sigmoid")

    def backward_step():
        a.grad += s * (1.0 - s) * out.grad

    out.backward_step = backward_step
    return out
# END SOLUTION

# %% check ch01-sigmoid
for point in (-2.0, 0.0, 0.7):
    got = reciprocal(Value(point + 3.0))
    assert math.isclose(got.data, 1 / (point + 3.0)), (
        f"reciprocal({point + 3.0}) is {got.data}, not {1 / (point + 3.0)}")
    for fn in (sigmoid_composed, sigmoid):
        got = fn(Value(point)).data
        assert math.isclose(got, 1 / (1 + math.exp(-point))), (
            f"{fn.__name__}({point}) is {got}, not 1 / (1 + e^(−a)) = {1 / (1 + math.exp(-point))}")
node = sigmoid(Value(0.7))
assert len(node.parents) == 1 and node.parents[0].data == 0.7, (
    "sigmoid should be a single node whose one parent is its input a, with its own "
    "backward_step, not a composition of other operations")
assert len(topological_order(sigmoid_composed(Value(0.7)))) > 2, (
    "sigmoid_composed should be built from the existing operations and reciprocal (several "
    "nodes), not as one node")
tests = [("reciprocal(a) * 3", lambda a: reciprocal(a) * 3.0, [1.7]),
         ("sigmoid_composed(a)", sigmoid_composed, [0.7]),
         ("sigmoid(a)", sigmoid, [0.7]),
         ("sigmoid_composed(2a) * 3", lambda a: sigmoid_composed(a * 2.0) * 3.0, [-0.4]),
         ("sigmoid(2a) * 3", lambda a: sigmoid(a * 2.0) * 3.0, [-0.4])]
for name, fn, point in tests:
    analytic = analytic_gradients(fn, point)[0]
    numeric = numeric_gradients(float_version(fn), point)[0]
    assert abs(analytic - numeric) < 1e-6, (
        f"d/da of {name} at a = {point[0]} is {analytic:.6f} by backward, {numeric:.6f} by "
        "finite differences: reciprocal's local derivative is −out², sigmoid's is σ(1 − σ), "
        "and both are multiplied by out.grad")
t = mt.tensor(0.7, requires_grad=True)
mt.sigmoid(t).backward()
for fn in (sigmoid_composed, sigmoid):
    ours = analytic_gradients(fn, [0.7])[0]
    assert math.isclose(ours, float(t.grad), rel_tol=1e-5), (
        f"{fn.__name__}'s gradient at 0.7 is {ours:.7f}, but mt.sigmoid's is "
        f"{float(t.grad):.7f}")

# %% wrong ch01-sigmoid
def sigmoid(a):  # noqa: F811  (forgets to multiply by out.grad: right only at the root)
    a = as_value(a)
    s = 1.0 / (1.0 + math.exp(-a.data))
    out = Value(s, (a,), "sigmoid")

    def backward_step():
        a.grad += s * (1.0 - s)

    out.backward_step = backward_step
    return out

# %% wrong ch01-sigmoid
def reciprocal(a):  # noqa: F811  (the sign of d(1/a)/da dropped)
    a = as_value(a)
    out = Value(1.0 / a.data, (a,), "1/x")

    def backward_step():
        a.grad += out.data**2 * out.grad

    out.backward_step = backward_step
    return out

# %% exercise ch01-train-neuron (2 points)
# Train the neuron with the chapter's backward (it resets every .grad): start from
# w1 = w2 = b = Value(0.0) and take 50 gradient-descent steps, learning rate 0.1, on the loss
# (o − 0.5)² where o = neuron(Value(2.0), Value(0.0), w1, w2, b).
# losses: list of the 50 loss values (floats), each computed before that step's update.
# w1, w2, b: the three Values after the 50 steps.
# BEGIN SOLUTION
w1, w2, b = Value(0.0), Value(0.0), Value(0.0)
losses = []
for _ in range(50):
    o = neuron(Value(2.0), Value(0.0), w1, w2, b)
    loss = (o + -0.5) * (o + -0.5)
    backward(loss)  # resets every .grad to 0 before the sweep
    losses.append(loss.data)
    for p in (w1, w2, b):
        p.data -= 0.1 * p.grad
# END SOLUTION

# %% check ch01-train-neuron
assert len(losses) == 50, f"losses should hold the 50 losses, one per step, not {len(losses)}"
assert math.isclose(losses[0], 0.25), (
    f"the first loss is {losses[0]}; from w1 = w2 = b = 0 the output is tanh(0) = 0, so the "
    "first loss (before any update) should be (0 − 0.5)²")
assert all(later <= earlier + 1e-12 for earlier, later in zip(losses, losses[1:])), (
    f"the loss should fall at every step, but it goes {[round(v, 4) for v in losses[:6]]}...: "
    "step against the gradient, p.data -= 0.1 * p.grad")
o = neuron(Value(2.0), Value(0.0), w1, w2, b)
assert losses[-1] < 1e-8 and abs(o.data - 0.5) < 1e-4, (
    f"after 50 steps the loss is {losses[-1]:.3g} and o = {o.data:.5f}; it should have "
    "reached 0.5 (loss below 1e-8): are all parameters updated at every step?")
assert w2.data == 0.0, (
    f"w2 moved to {w2.data}, but its gradient is x2 · (…) = 0 for the input x2 = 0")
assert abs(b.data - w1.data / 2) < 1e-9, (
    f"w1 = {w1.data:.5f} and b = {b.data:.5f}: from zero, ∂L/∂w1 = 2·∂L/∂b at every step "
    "(x1 = 2), so gradient descent keeps b = w1 / 2. Is b updated with its own gradient?")

# %% wrong ch01-train-neuron
w1, w2, b = Value(0.0), Value(0.0), Value(0.0)
losses = []
for _ in range(50):  # the bias forgotten in the update: it stays 0
    o = neuron(Value(2.0), Value(0.0), w1, w2, b)
    loss = (o + -0.5) * (o + -0.5)
    backward(loss)
    losses.append(loss.data)
    for p in (w1, w2):
        p.data -= 0.1 * p.grad
