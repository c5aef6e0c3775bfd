# %% setup
# Chapter 2's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
from minitransformer.backend import array_module


def shape_error_message(make):
    """The message of the mt.ShapeError that make() raises, or None if it raises none."""
    try:
        make()
    except mt.ShapeError as error:
        return str(error)
    return None


# %% exercise ch02-predict-broadcast (1 point)
# shape_a: tuple, the shape of mt.ones(5, 1, 4) + mt.ones(3, 1).
# shape_b: tuple, the shape of mt.ones(3) * mt.ones(3, 1).
# raising_pair: the pair of shapes whose sum raises a ShapeError, written as a tuple of the two
# shapes: ((5, 4), (4, 5)) or ((5, 1), (4,)).
# error_axis: int, the (negative) axis that the ShapeError's message names.
# BEGIN SOLUTION
shape_a = (5, 3, 4)  # (5, 1, 4) + (1, 3, 1)
shape_b = (3, 3)  # (1, 3) * (3, 1): an outer product
raising_pair = ((5, 4), (4, 5))  # (5, 1) + (1, 4) -> (5, 4) is fine
error_axis = -2  # "axis -2 has sizes [4, 5]": the first disagreeing axis it meets
# END SOLUTION

# %% check ch02-predict-broadcast
for name, guess, make in [("shape_a", shape_a, lambda: mt.ones(5, 1, 4) + mt.ones(3, 1)),
                          ("shape_b", shape_b, lambda: mt.ones(3) * mt.ones(3, 1))]:
    actual = make().shape
    assert tuple(guess) == actual, (
        f"{name} is {tuple(guess)}, which is not the shape the operation gives: align the "
        "shapes from the right, pad the shorter one with 1s on the left, and stretch the 1s")
pairs = [((5, 4), (4, 5)), ((5, 1), (4,))]
raising = [pair for pair in pairs
           if shape_error_message(lambda pair=pair: mt.ones(*pair[0]) + mt.ones(*pair[1]))]
assert tuple(tuple(shape) for shape in raising_pair) in pairs, (
    f"raising_pair should be one of {pairs}, not {raising_pair!r}")
assert tuple(tuple(shape) for shape in raising_pair) == raising[0], (
    f"{raising_pair[0]} + {raising_pair[1]} broadcasts without error; try both pairs")
message = shape_error_message(lambda: mt.ones(*raising[0][0]) + mt.ones(*raising[0][1]))
assert f"axis {error_axis} " in message, (
    f"error_axis is {error_axis!r}, which is not the axis the ShapeError's message names: "
    "raise it (in a try/except mt.ShapeError) and read the message")

# %% wrong ch02-predict-broadcast
shape_b = (3, 1)  # as if a (3,) vector met a column as a column

# %% wrong ch02-predict-broadcast
raising_pair = ((5, 1), (4,))  # (5, 1) and (4,) differ, but (5, 1) + (1, 4) is fine

# %% exercise ch02-gelu-tanh (2 points)
# gelu_tanh(a) -> array of a's shape: 0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³))) for a raw
# NumPy or CuPy array a (not a Tensor), written with xp = array_module(a), so that the same
# code runs on both backends.
# BEGIN SOLUTION
def gelu_tanh(a):
    xp = array_module(a)
    return 0.5 * a * (1 + xp.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
# END SOLUTION

# %% check ch02-gelu-tanh
x = mt.tensor(np.linspace(-4, 4, 101))  # a float64 array keeps float64
mine = gelu_tanh(x.data)
assert isinstance(mine, np.ndarray), (
    f"gelu_tanh of a NumPy array should return a NumPy array, not {type(mine).__name__}: work "
    "on the raw array with xp = array_module(a), not on a Tensor")
assert mine.shape == x.shape, f"gelu_tanh changed the shape {x.shape} to {mine.shape}"
difference = np.abs(mine - mt.gelu(x).data)
worst = int(difference.argmax())
assert difference.max() < 1e-12, (
    f"gelu_tanh differs from mt.gelu by up to {difference.max():.3g}, at a = "
    f"{x.data[worst]:.2f}: {mine[worst]:.6f} instead of {mt.gelu(x).data[worst]:.6f}. "
    "Check the formula: 0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³)))")

# %% wrong ch02-gelu-tanh
def gelu_tanh(a):  # noqa: F811  (a² instead of a³ inside the tanh)
    xp = array_module(a)
    return 0.5 * a * (1 + xp.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**2)))

# %% wrong ch02-gelu-tanh
def gelu_tanh(a):  # noqa: F811  (√(2π) instead of √(2/π))
    xp = array_module(a)
    return 0.5 * a * (1 + xp.tanh(np.sqrt(2 * np.pi) * (a + 0.044715 * a**3)))

# %% exercise ch02-data-vs-numpy (2 points)
# after_numpy_zero: list, x.tolist() after `arr = x.numpy(); arr[...] = 0`, for
# x = mt.tensor([1.0, 2.0, 3.0]).
# after_data_zero: list, x.tolist() after `arr = x.data; arr[...] = 0`, for a fresh
# x = mt.tensor([1.0, 2.0, 3.0]).
# optimizer_writes_into: "data" or "numpy", the one an optimizer writes its update into.
# sgd_step(param, lr): one step of gradient descent, param ← param − lr · param.grad, done the
# way an optimizer must, so that everyone holding the same tensor object `param` sees the new
# values. Returns nothing.
# BEGIN SOLUTION
x = mt.tensor([1.0, 2.0, 3.0])
arr = x.numpy()
arr[...] = 0
after_numpy_zero = x.tolist()  # [1.0, 2.0, 3.0]: a copy was zeroed
x = mt.tensor([1.0, 2.0, 3.0])
arr = x.data
arr[...] = 0
after_data_zero = x.tolist()  # [0.0, 0.0, 0.0]: the tensor's own array was zeroed
optimizer_writes_into = "data"


def sgd_step(param, lr):
    param.data -= lr * param.grad  # in place: the model holds this very tensor
# END SOLUTION

# %% check ch02-data-vs-numpy
x = mt.tensor([1.0, 2.0, 3.0])
x.numpy()[...] = 0
numpy_result = x.tolist()
x.data[...] = 0
data_result = x.tolist()
assert list(after_numpy_zero) == numpy_result, (
    f"after_numpy_zero is {after_numpy_zero}, but zeroing x.numpy() leaves x as {numpy_result}")
assert list(after_data_zero) == data_result, (
    f"after_data_zero is {after_data_zero}, but zeroing x.data makes x {data_result}: start "
    "from a fresh x = mt.tensor([1.0, 2.0, 3.0])")
assert optimizer_writes_into in ("data", "numpy"), (
    f"optimizer_writes_into should be 'data' or 'numpy', not {optimizer_writes_into!r}")
written = data_result if optimizer_writes_into == "data" else numpy_result
assert written == [0.0, 0.0, 0.0], (
    f"optimizer_writes_into is {optimizer_writes_into!r}, but zeroing through it left the "
    f"tensor at {written}: an update written there would be lost")
w = mt.tensor([1.0, -2.0, 0.5], requires_grad=True)
held_by_model = {"w": w}  # a model keeps a reference to the same tensor object
(w * mt.tensor([3.0, 1.0, -2.0])).sum().backward()
result = sgd_step(w, 0.5)
assert result is None, f"sgd_step should return nothing, not {result!r}"
assert held_by_model["w"] is w and np.allclose(held_by_model["w"].numpy(), [-0.5, -2.5, 1.5]), (
    f"after sgd_step(w, 0.5) with w = [1, -2, 0.5] and w.grad = [3, 1, -2], the tensor the "
    f"model holds is {held_by_model['w'].tolist()}: the step must change w itself (through "
    "w.data), not a copy or a new tensor")

# %% wrong ch02-data-vs-numpy
def sgd_step(param, lr):  # noqa: F811  (updates the copy that .numpy() returns)
    values = param.numpy()
    values -= lr * param.grad

# %% wrong ch02-data-vs-numpy
optimizer_writes_into = "numpy"

# %% exercise ch02-seed-stream (2 points)
# pairs: NumPy array (4,), the two mt.randn(2) drawn one after the other right after
# mt.manual_seed(1), joined in order.
# four: NumPy array (4,), mt.randn(4) drawn right after a new mt.manual_seed(1).
# same_numbers: True or False, whether pairs and four hold the same numbers.
# after_extra_draw: NumPy array (2,), mt.randn(2) drawn after mt.manual_seed(1) and one extra
# mt.randn(1) (as when a dropout layer is switched on before it).
# starts_at: int, the position in `four` at which the numbers of after_extra_draw start.
# BEGIN SOLUTION
mt.manual_seed(1)
pairs = np.concatenate([mt.randn(2).numpy(), mt.randn(2).numpy()])
mt.manual_seed(1)
four = mt.randn(4).numpy()
same_numbers = bool(np.array_equal(pairs, four))  # True: one stream, however it is split
mt.manual_seed(1)
mt.randn(1)
after_extra_draw = mt.randn(2).numpy()
starts_at = 1  # the extra draw took the first number; every later one moved up by one
# END SOLUTION

# %% check ch02-seed-stream
for name, value, size in [("pairs", pairs, 4), ("four", four, 4),
                          ("after_extra_draw", after_extra_draw, 2)]:
    assert np.shape(value) == (size,), (
        f"{name} should be an array of shape ({size},), not {np.shape(value)}")
mt.manual_seed(1)
expected_pairs = np.concatenate([mt.randn(2).numpy(), mt.randn(2).numpy()])
mt.manual_seed(1)
expected_four = mt.randn(4).numpy()
mt.manual_seed(1)
mt.randn(1)
expected_extra = mt.randn(2).numpy()
assert np.allclose(pairs, expected_pairs), (
    f"pairs is {np.round(pairs, 5)}, not the two mt.randn(2) drawn right after "
    "mt.manual_seed(1): seed right before the first of the two draws")
assert np.allclose(four, expected_four), (
    f"four is {np.round(four, 5)}, not what mt.randn(4) gives right after mt.manual_seed(1): "
    "reseed before drawing it")
assert same_numbers is bool(np.array_equal(expected_pairs, expected_four)), (
    f"same_numbers is {same_numbers!r}; compare your pairs {np.round(pairs, 5)} with your "
    f"four {np.round(four, 5)}")
assert np.allclose(after_extra_draw, expected_extra), (
    f"after_extra_draw is {np.round(after_extra_draw, 5)}; draw it after mt.manual_seed(1) "
    "and one mt.randn(1)")
where = [k for k in range(3) if np.allclose(expected_four[k:k + 2], expected_extra)]
assert starts_at in where, (
    f"starts_at is {starts_at!r}, but four[{starts_at}:{starts_at + 2}] = "
    f"{np.round(four[starts_at:starts_at + 2], 5) if starts_at in (0, 1, 2) else '?'} is not "
    f"after_extra_draw = {np.round(after_extra_draw, 5)}: how many numbers did the extra draw "
    "take from the stream?")

# %% wrong ch02-seed-stream
four = mt.randn(4).numpy()  # forgot to reseed: the stream went on
same_numbers = bool(np.array_equal(pairs, four))

# %% wrong ch02-seed-stream
same_numbers = False  # a guess: "a draw of 4 is not two draws of 2"

# %% wrong ch02-seed-stream
starts_at = 0  # a guess: "each seed starts the stream over, whatever was drawn"
