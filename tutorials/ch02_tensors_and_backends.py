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
# # Chapter 2 — Tensors and backends
#
# Chapter 1 differentiated one number at a time. Real models push whole arrays through each
# operation: a batch of sentences, each a sequence of vectors. minitransformer's `Tensor` wraps an
# n-dimensional array from NumPy (on the CPU) or CuPy (on a GPU) and adds what autograd needs.
# This chapter is about the array side: how tensors are made, which dtype they get, where their
# data lives, how randomness is made reproducible, and how shapes combine.
#
# **Learning objectives.** After this chapter you can
#
# 1. create tensors with `mt.tensor`, `mt.zeros`, `mt.ones`, `mt.full`, `mt.arange`, `mt.randn`;
# 2. predict a tensor's dtype (float32 by default, integers stay integers) and change the default;
# 3. tell `.data` (the backend array itself) from `.numpy()` (a NumPy copy);
# 4. explain the `xp = array_module(x)` idea that lets one piece of code run on NumPy and CuPy;
# 5. reproduce random draws with `mt.manual_seed`;
# 6. apply NumPy's broadcasting rules and read minitransformer's `ShapeError` when they fail.

# %%
import os

import numpy as np

import minitransformer as mt
from minitransformer.backend import array_module

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer random samples when set

# %% [markdown]
# ## 1. Making tensors
#
# `mt.tensor(data)` copies a number, a (nested) list, a NumPy array or another tensor. The
# creation helpers make new tensors of a given shape; they accept the shape either as separate
# integers, `zeros(2, 3)`, or as one tuple, `zeros((2, 3))`.

# %%
t = mt.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print(t)
print("shape", t.shape, " ndim", t.ndim, " size", t.size, " dtype", t.dtype)
assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6

z = mt.zeros(2, 3)
assert z.shape == mt.zeros((2, 3)).shape == (2, 3)
print(mt.ones(2), mt.full((2, 2), 7.0))
print(mt.arange(5), mt.arange(0.0, 1.0, 0.25))
print(mt.randn(2, 3))  # standard normal samples, see section 5

# %% [markdown]
# A 0-d tensor holds a single number; `.item()` turns any one-element tensor into a Python number,
# and `.tolist()` turns a tensor into nested lists.

# %%
s = mt.tensor(3.5)
print(s, s.shape, s.item())
assert s.shape == () and s.item() == 3.5
assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]

# %% [markdown]
# ## 2. Dtypes: the rules
#
# Training runs in 32-bit floats: half the memory of float64, and much faster on GPUs, with
# precision to spare for stochastic gradient descent. So:
#
# - Python floats, and lists containing floats, take the **default dtype**, float32;
# - a NumPy *floating array* keeps its own dtype (you asked for that array);
# - **integer data stays integer** (int64): token ids and class labels are integers and never
#   need gradients; booleans stay bool (masks);
# - `zeros`, `ones`, `full`, `randn`, `rand` and a float `arange` use the default dtype; an
#   all-integer `arange` gives int64;
# - any creation function accepts `dtype=` to override all of this.

# %%
assert mt.get_default_dtype() == np.float32
assert mt.tensor(1.5).dtype == np.float32
assert mt.tensor([1, 2.5]).dtype == np.float32  # one float makes the list floating
assert mt.tensor(np.array([1.0, 2.0])).dtype == np.float64  # a float64 array keeps float64
assert mt.tensor([1, 2, 3]).dtype == np.int64  # integer data stays integer
assert mt.tensor([True, False]).dtype == np.bool_
assert mt.zeros(2).dtype == mt.randn(2).dtype == np.float32
assert mt.arange(4).dtype == np.int64 and mt.arange(0.0, 1.0, 0.5).dtype == np.float32
assert mt.tensor([1, 2], dtype="float64").dtype == np.float64
print("all dtype rules hold")

# %% [markdown]
# Only floating tensors can carry gradients. Asking an integer tensor for one is a mistake
# minitransformer reports at once, with a `DTypeError` (a `TypeError`):

# %%
try:
    mt.tensor([1, 2, 3], requires_grad=True)
except mt.DTypeError as error:
    print("DTypeError:", error)
    assert "only floating-point tensors can require grad" in str(error)
else:
    raise AssertionError("an integer tensor must refuse requires_grad=True")

# %% [markdown]
# When tensors of different floating precision meet, the result takes the wider one, and integer
# tensors join the floating dtype. Python numbers adapt to the tensor: `float32 * 2.0` stays
# float32.

# %%
f32, f64, ints = mt.ones(2), mt.ones(2, dtype="float64"), mt.tensor([1, 2])
assert (f32 + f64).dtype == np.float64
assert (f32 + ints).dtype == np.float32
assert (f32 * 2.0).dtype == np.float32
assert (ints + ints).dtype == np.int64

# %% [markdown]
# Gradient checks (Chapter 3) need float64. `mt.set_default_dtype("float64")` switches the default
# for everything created afterwards; switch it back when done, since it is global state.

# %%
mt.set_default_dtype("float64")
try:
    assert mt.tensor(1.5).dtype == np.float64 and mt.randn(3).dtype == np.float64
    assert mt.tensor([1, 2]).dtype == np.int64  # integers are unaffected
finally:
    mt.set_default_dtype("float32")
assert mt.get_default_dtype() == np.float32

# %% [markdown]
# ## 3. `.data` and `.numpy()`
#
# A tensor's `.data` *is* its backend array: a `numpy.ndarray` on the CPU, a `cupy.ndarray` on a
# GPU. Ops read and write `.data`; `.grad`, once computed, is an array of the same kind, shape and
# dtype. `.numpy()` returns a NumPy **copy** from either backend, safe to modify, plot or save.
# `mt.tensor(array)` copies too, so a tensor never shares memory with the array it came from.

# %%
source = np.array([1.0, 2.0, 3.0], dtype=np.float32)
x = mt.tensor(source)
source[0] = 100.0  # the tensor made its own copy
assert x.data[0] == 1.0
assert isinstance(x.data, np.ndarray) and x.device == "cpu"

copy = x.numpy()
copy[1] = -1.0  # changing the copy ...
assert x.data[1] == 2.0  # ... leaves the tensor alone

x.data[2] = 30.0  # writing into .data changes the tensor itself
assert x.tolist() == [1.0, 2.0, 30.0]

# %% [markdown]
# (Writing into `.data` bypasses autograd: nothing records it. Optimizers do it on purpose when they
# update parameters; in model code, use operations instead.)
#
# ## 4. One code path, two backends: `xp = array_module(x)`
#
# NumPy and CuPy have (almost) the same functions: `numpy.exp` and `cupy.exp`, `numpy.matmul` and
# `cupy.matmul`. So instead of writing each op twice, every op asks which module owns its input
# arrays and calls that one:
#
#     xp = array_module(x)      # numpy for a numpy.ndarray, cupy for a cupy.ndarray
#     y = xp.exp(x)
#
# `minitransformer.backend` is the only module of the package that imports NumPy or CuPy. Here is
# the idea in a function of our own; it would run unchanged on GPU arrays.

# %%
def softsign(a):
    """a / (1 + |a|) on a NumPy or a CuPy array."""
    # BEGIN SOLUTION
    xp = array_module(a)
    return a / (1 + xp.abs(a))
    # END SOLUTION


print(softsign(x.data))
assert array_module(x.data) is np
assert np.allclose(softsign(np.array([-1.0, 0.0, 3.0])), [-0.5, 0.0, 0.75]), (
    f"softsign([-1, 0, 3]) should be a / (1 + |a|) = [-0.5, 0, 0.75], got "
    f"{softsign(np.array([-1.0, 0.0, 3.0]))}: is |a| taken (xp.abs) and added to 1 before dividing?"
)

# %% [markdown]
# The *current backend* decides where new tensors are created. `mt.available_backends()` lists
# what this machine can run: always `"numpy"`, plus `"cupy"` when CuPy and a CUDA GPU are present.
# `mt.use_backend(name)` is a context manager that switches and then restores the previous
# backend; `mt.set_backend(name)` switches for good.

# %%
print("available:", mt.available_backends(), " current:", mt.get_backend())
assert "numpy" in mt.available_backends() and mt.get_backend() == "numpy"

with mt.use_backend("numpy"):
    assert isinstance(mt.zeros(2).data, np.ndarray)

if "cupy" in mt.available_backends():
    with mt.use_backend("cupy"):
        g = mt.randn(2, 3)
        print("on the GPU:", g.device, type(g.data).__module__)
        assert g.device.startswith("cuda") and isinstance(g.numpy(), np.ndarray)
    assert mt.get_backend() == "numpy"  # restored on leaving the block

# %% [markdown]
# ## 5. Reproducible randomness: `manual_seed`
#
# Every random draw in minitransformer (`randn`, `rand`, weight initialisation, dropout) comes from
# **one** shared generator. Seeding it with `mt.manual_seed(seed)` makes a whole run repeatable:
# the same seed gives the same numbers, in the same order.

# %%
mt.manual_seed(0)
first = mt.randn(3).numpy()
second = mt.randn(3).numpy()  # the generator moved on: different numbers
mt.manual_seed(0)
again = mt.randn(3).numpy()
print(first, second, again, sep="\n")
assert np.array_equal(first, again) and not np.array_equal(first, second)

# %% [markdown]
# `randn` draws from the standard normal distribution N(0, 1): with n samples, the sample mean is
# within a few 1/√n of 0 and the standard deviation close to 1.

# %%
n = 10_000 if FAST else 1_000_000
samples = mt.randn(n)
mean, std = samples.mean().item(), samples.std().item()
print(f"n={n}: mean {mean:+.4f}, std {std:.4f}")
assert abs(mean) < 5 / n**0.5 and abs(std - 1) < 5 / n**0.5

# %% [markdown]
# ## 6. Broadcasting
#
# Adding a bias vector of shape (3,) to a batch of shape (2, 3) should add it to every row.
# NumPy's **broadcasting** rules, which minitransformer follows exactly, say when shapes combine:
#
# 1. align the shapes from the right (the last axes first);
# 2. a missing leading axis counts as size 1;
# 3. on each axis the sizes must be equal, or one of them 1; a size-1 axis is repeated to match.
#
# For example:
#
#     (2, 3) + (3,)       ->  (2, 3) + (1, 3)  ->  (2, 3)
#     (2, 1) + (1, 4)     ->  (2, 4)              an outer sum
#     (4, 1, 3) + (2, 3)  ->  (4, 2, 3)

# %%
batch = mt.arange(6.0).reshape(2, 3)  # [[0, 1, 2], [3, 4, 5]]
bias = mt.tensor([10.0, 20.0, 30.0])
print(batch + bias)
assert (batch + bias).tolist() == [[10.0, 21.0, 32.0], [13.0, 24.0, 35.0]]

column, row = mt.ones(2, 1), mt.arange(4.0).reshape(1, 4)
assert (column + row).shape == (2, 4)
assert (mt.ones(4, 1, 3) * mt.ones(2, 3)).shape == (4, 2, 3)
assert (batch * 2.0).shape == (2, 3)  # a Python number broadcasts to anything

# %% [markdown]
# When no rule applies, minitransformer raises a `ShapeError` (a `ValueError`) whose message names
# the operation, both shapes, the axis that disagrees and the rule, instead of a NumPy traceback
# from deep inside an op. Here the last axes are 3 and 2: neither equal nor 1.

# %%
try:
    mt.ones(2, 3) + mt.ones(2)
except mt.ShapeError as error:
    message = str(error)
    print("ShapeError:", message)
else:
    raise AssertionError("(2, 3) + (2,) must not broadcast")
assert "(2, 3)" in message and "(2,)" in message and "cannot broadcast" in message
assert isinstance(mt.ShapeError("x"), ValueError)  # `except ValueError` catches it too

# %% [markdown]
# Often the fix is to add an axis of size 1 where you meant one: a (2,) vector meant per *row* must
# be a column, (2, 1).

# %%
per_row = mt.tensor([100.0, 200.0]).reshape(2, 1)  # (2,) -> (2, 1)
print(batch + per_row)
assert (batch + per_row).tolist() == [[100.0, 101.0, 102.0], [203.0, 204.0, 205.0]]

# %% [markdown]
# ## Summary
#
# - `mt.tensor` copies its data; `zeros`, `ones`, `full`, `arange`, `randn`, `rand` make new
#   tensors on the current backend.
# - float32 is the default dtype; Python floats take it, floating NumPy arrays keep their dtype,
#   integer data stays int64, and `set_default_dtype` changes the default (float64 for checks).
# - `.data` is the backend array itself; `.numpy()` is always a NumPy copy.
# - Ops are written once with `xp = array_module(x)`, so NumPy and CuPy share every line;
#   `available_backends`, `use_backend` and `set_backend` choose where tensors live.
# - `manual_seed` seeds the one generator all randomness comes from.
# - Broadcasting aligns shapes from the right; sizes must match or be 1, and a `ShapeError` says
#   which axis broke the rule.
#
# ## Exercises
#
# ```{exercise} Predict the broadcast
# :label: ch02-predict-broadcast
#
# Predict the shape of `mt.ones(5, 1, 4) + mt.ones(3, 1)` and of `mt.ones(3) * mt.ones(3, 1)`,
# then check. Which of `(5, 4) + (4, 5)` and `(5, 1) + (4,)` raises, and what does the message
# say?
# ```
#
# ```{solution} ch02-predict-broadcast
# :class: dropdown
#
# Aligned from the right, (5, 1, 4) + (3, 1) is (5, 1, 4) + (1, 3, 1), so the result is
# **(5, 3, 4)**. (3,) · (3, 1) is (1, 3) · (3, 1), an outer product of shape **(3, 3)**, a classic
# surprise when a column was meant to meet a column.
#
# `(5, 1) + (4,)` is fine, (5, 1) + (1, 4) → (5, 4). `(5, 4) + (4, 5)` raises:
#
#     ShapeError: add: shapes (5, 4) and (4, 5) cannot broadcast: axis -2 has sizes [4, 5];
#     aligned from the right, each axis must be equal or 1
#
# (Both axes disagree here; the message names the first one it meets.)
# ```
#
# ```{exercise} GELU on raw arrays
# :label: ch02-gelu-tanh
#
# Write `gelu_tanh(a)`, the tanh approximation of GELU,
# 0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³))), on raw arrays with `xp = array_module(a)`, and
# compare it with `mt.gelu` on the same input.
# ```
#
# ````{solution} ch02-gelu-tanh
# :class: dropdown
#
# ```python
# def gelu_tanh(a):
#     xp = array_module(a)
#     return 0.5 * a * (1 + xp.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
#
#
# x = mt.tensor(np.linspace(-4, 4, 101))  # a float64 array keeps float64
# print(np.abs(gelu_tanh(x.data) - mt.gelu(x).data).max())  # 0.0
# ```
#
# The largest difference is exactly 0.0: `mt.gelu` *is* the tanh form, computed with the same
# formula. Only `xp.tanh` depends on the backend; `np.sqrt(2 / np.pi)` is a plain Python-level
# constant, so the function runs unchanged on CuPy arrays.
# ````
#
# ```{exercise} A copy or the tensor itself
# :label: ch02-data-vs-numpy
#
# Show that `x.numpy()` and `x.data` behave differently under `arr[...] = 0`. Which one would an
# optimizer write into, and why?
# ```
#
# ````{solution} ch02-data-vs-numpy
# :class: dropdown
#
# ```python
# x = mt.tensor([1.0, 2.0, 3.0])
# arr = x.numpy()
# arr[...] = 0
# print(x.tolist())  # [1.0, 2.0, 3.0]: a copy was zeroed
# arr = x.data
# arr[...] = 0
# print(x.tolist())  # [0.0, 0.0, 0.0]: the tensor's own array was zeroed
# ```
#
# An optimizer writes into `.data`: the update must change the parameter *in place*, so that the
# model, which holds the same `Parameter` object, sees the new values; writing into the copy that
# `.numpy()` returns would be lost. On a GPU `.numpy()` also copies device memory to the host,
# which an optimizer step must never do.
# ````
#
# ```{exercise} How the generator is consumed
# :label: ch02-seed-stream
#
# Seed with `mt.manual_seed(1)`, draw `mt.randn(2)` twice, then reseed and draw `mt.randn(4)`
# once. Are the four numbers the same as the two pairs? What does that tell you about how the
# shared generator is consumed?
# ```
#
# ```{solution} ch02-seed-stream
# :class: dropdown
#
# Yes: both give 1.7291036, −1.4284534, 1.0277448, 1.8820691. The generator is one stream of
# numbers; each draw takes the next `size` numbers from it, however the draws are split up. The
# flip side: any extra draw (one more `randn`, a dropout layer switched on) shifts every later
# number, so reproducing a run means repeating the same draws in the same order after the same
# seed.
# ```
