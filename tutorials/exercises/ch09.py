# %% setup
# Chapter 9's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import math

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn


def as_array(x):
    """A Tensor or array-like as a float64 NumPy array (answers may use either)."""
    return np.asarray(x.numpy() if isinstance(x, mt.Tensor) else x, dtype=np.float64)


def sinusoidal_table(d_model, max_len):
    """minitransformer's sinusoidal codes, (max_len, d_model), as a float64 NumPy array."""
    return as_array(nn.SinusoidalPositionalEncoding(d_model, max_len=max_len).table)


# %% exercise ch09-causal-order (2 points)
# Swap the tokens at positions i < j of a sequence of T token vectors (no positional codes)
# and run ONE causal self-attention layer, nn.MultiHeadAttention with mask=F.causal_mask(T),
# on the original and on the swapped sequence; try a few i, j and T.
# unchanged_after_swap(i, j, length): a list of `length` bools (T = length), True at the
#     positions t whose output is the same for both sequences (output t of the original vs
#     output t of the swapped one).
# deep_after_j_unchanged: True or False: in a TWO-layer causal nn.Encoder (dropout 0, mask
#     F.causal_mask(T)), do the outputs at the positions after j stay unchanged too?
# BEGIN SOLUTION
def unchanged_after_swap(i, j, length):
    # before i: neither token is seen; after j: the same set of keys, in another order
    return [t < i or t > j for t in range(length)]


deep_after_j_unchanged = False  # the first layer made positions i..j order-dependent
# END SOLUTION

# %% check ch09-causal-order
def swap_unchanged(layer, length, i, j):
    """Which outputs of layer(x, causal mask) stay the same when tokens i and j swap."""
    mt.manual_seed(length + 10 * i + j)
    x = mt.randn(1, length, 16)
    order = list(range(length))
    order[i], order[j] = j, i
    with mt.no_grad():
        a = layer(x, F.causal_mask(length)).numpy()[0]
        b = layer(x[:, order], F.causal_mask(length)).numpy()[0]
    return [bool(np.allclose(a[t], b[t], atol=1e-5)) for t in range(length)]


mt.manual_seed(0)
mha = nn.MultiHeadAttention(16, 2)
for T, i, j in [(6, 1, 4), (7, 2, 5), (5, 0, 1), (8, 3, 6), (4, 0, 3)]:
    measured = swap_unchanged(lambda x, mask: mha(x, x, x, mask=mask), T, i, j)
    predicted = [bool(u) for u in unchanged_after_swap(i, j, T)]
    assert predicted == measured, (
        f"unchanged_after_swap({i}, {j}, {T}) is {predicted}, but one causal attention layer "
        f"leaves the outputs {[t for t in range(T) if measured[t]]} unchanged: which keys does "
        "each query see before and after the swap, and does attention care about their order?")
encoder = nn.Encoder(2, 16, 2, 32, dropout=0.0)
measured = swap_unchanged(encoder, 7, 2, 4)
assert deep_after_j_unchanged == all(measured[5:]), (
    f"deep_after_j_unchanged is {deep_after_j_unchanged!r}, but swapping positions 2 and 4 in "
    f"a two-layer causal encoder leaves positions 5, 6 {'un' if all(measured[5:]) else ''}"
    "changed: the second layer's keys at positions 2..4 are the first layer's outputs")

# %% wrong ch09-causal-order
def unchanged_after_swap(i, j, length):  # noqa: F811  (every position from i on changes)
    return [t < i for t in range(length)]

# %% wrong ch09-causal-order
deep_after_j_unchanged = True  # one layer's invariance taken to hold for a stack

# %% exercise ch09-wavelengths (2 points)
# wavelengths(d_model): a NumPy array of the d_model/2 wavelengths (in positions) of the
#     sinusoidal encoding's dimension pairs i = 0 ... d_model/2 - 1, the fastest first
#     (for d_model = 512: the smallest and the largest wavelength are its ends).
# first_cos_one: the first position pos > 0 at which the fastest pair's cosine, cos(pos),
#     rounds to exactly 1.0 in float32 (np.float32(math.cos(pos)) == 1.0), an int.
# pair_comes_back: True or False: at first_cos_one, does the whole fastest (sin, cos) pair
#     round, in float32, to its values at position 0?
# BEGIN SOLUTION
def wavelengths(d_model):
    i = np.arange(d_model // 2)
    return 2 * math.pi * 10000 ** (2 * i / d_model)  # λ_i = 2π / ω_i


first_cos_one = next(pos for pos in range(1, 100_000) if np.float32(math.cos(pos)) == 1.0)
pair_comes_back = bool(np.float32(math.sin(first_cos_one)) == 0.0)  # sin is 6.0e-5: no
# END SOLUTION

# %% check ch09-wavelengths
for d_model in (16, 512):
    lam = as_array(wavelengths(d_model))
    assert lam.shape == (d_model // 2,), (
        f"wavelengths({d_model}) has shape {lam.shape}, not one wavelength per dimension pair, "
        f"({d_model // 2},)")
    table = sinusoidal_table(d_model, 40)
    pos = np.arange(40)[:, None]
    rebuilt = np.sin(2 * math.pi * pos / lam)  # a wave of wavelength λ: sin(2π pos / λ)
    gap = np.abs(rebuilt - table[:, 0::2]).max()
    worst = int(np.abs(rebuilt - table[:, 0::2]).max(axis=0).argmax())
    assert gap < 1e-5, (
        f"sin(2π·pos / wavelengths({d_model})[i]) differs from the table's column 2i by up to "
        f"{gap:.3g} (worst pair i = {worst}): pair i has angular frequency "
        "ω_i = 1 / 10000^(2i/d_model), and a wavelength is 2π / ω")
pos = int(first_cos_one)
assert pos > 0 and np.float32(math.cos(pos)) == 1.0, (
    f"np.float32(math.cos({pos})) is {np.float32(math.cos(pos))!r}, not 1.0: scan pos = 1, 2, "
    "... and stop at the first where the float32 cosine equals 1.0 exactly")
earlier = [p for p in range(1, pos) if np.float32(math.cos(p)) == 1.0]
assert not earlier, f"first_cos_one is {pos}, but the cosine already rounds to 1.0 at {earlier}"
assert pair_comes_back == (np.float32(math.sin(pos)) == 0.0), (
    f"pair_comes_back is {pair_comes_back!r}, but at position {pos} the sine is "
    f"{float(np.float32(math.sin(pos))):.3g} in float32 (position 0's is 0.0)")

# %% wrong ch09-wavelengths
def wavelengths(d_model):  # noqa: F811  (the 2 of the exponent 2i/d_model forgotten)
    return 2 * math.pi * 10000 ** (np.arange(d_model // 2) / d_model)

# %% wrong ch09-wavelengths
pair_comes_back = True  # the cosine back at 1.0 taken for the whole pair

# %% exercise ch09-shift-backwards (2 points)
# shift_matrix(k, d_model): the (d_model, d_model) block-diagonal NumPy matrix M_k of
#     section 3 with PE(pos + k) = M_k PE(pos) (codes as column vectors), for any int k.
# shift_back(codes, k): for codes, an (N, d_model) array whose row n is PE(pos_n), the
#     (N, d_model) array whose row n is PE(pos_n - k), computed with shift_matrix(k, d_model)
#     (positive k: no shift_matrix(-k, ...)).
# inverse_error: the largest |M_{-k} M_k - I| over k = 1, 5, 17 for d_model = 16 (a float).
# minus_is_transpose: True or False: is M_{-k} equal to M_kᵀ (for d_model = 16, k = 1, 5, 17)?
# BEGIN SOLUTION
def shift_matrix(k, d_model):
    m = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        theta = k / 10000 ** (2 * i / d_model)  # ω_i · k
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[math.cos(theta), math.sin(theta)],
                                               [-math.sin(theta), math.cos(theta)]]
    return m


def shift_back(codes, k):
    # PE(pos - k) = M_kᵀ PE(pos) as columns; for rows, (M_kᵀ c)ᵀ = cᵀ M_k
    return np.asarray(codes) @ shift_matrix(k, np.shape(codes)[-1])


inverse_error = max(np.abs(shift_matrix(-k, 16) @ shift_matrix(k, 16) - np.eye(16)).max()
                    for k in (1, 5, 17))
minus_is_transpose = all(np.allclose(shift_matrix(-k, 16), shift_matrix(k, 16).T)
                         for k in (1, 5, 17))
# END SOLUTION

# %% check ch09-shift-backwards
table = sinusoidal_table(16, 64)
for k in (1, 5, 17):
    m = as_array(shift_matrix(k, 16))
    assert m.shape == (16, 16), f"shift_matrix({k}, 16) has shape {m.shape}, not (16, 16)"
    gap = np.abs(table[:-k] @ m.T - table[k:]).max()
    assert gap < 1e-5, (
        f"M_{k} PE(pos) differs from PE(pos + {k}) by up to {gap:.3g}: block i should be "
        "[[cos θ, sin θ], [-sin θ, cos θ]] with θ = k / 10000^(2i/d_model) (check the signs)")
    back = as_array(shift_back(table[k:], k))
    gap = np.abs(back - table[:-k]).max()
    assert back.shape == table[:-k].shape and gap < 1e-5, (
        f"shift_back(PE rows, k={k}) differs from the codes k positions earlier by up to "
        f"{gap:.3g}: moving back is M_kᵀ on a column, so on a row vector c it is c @ M_k, "
        "not c @ M_kᵀ (that moves forward)")
errors = [np.abs(as_array(shift_matrix(-k, 16)) @ as_array(shift_matrix(k, 16))
                 - np.eye(16)).max() for k in (1, 5, 17)]
assert 0 <= inverse_error < 1e-9 and abs(inverse_error - max(errors)) < 1e-12, (
    f"inverse_error is {inverse_error!r}: take the largest |M_-k M_k - I| over all entries and "
    f"k = 1, 5, 17 (with shift_matrix(-k, 16) @ shift_matrix(k, 16))")
transposed = all(np.allclose(as_array(shift_matrix(-k, 16)), as_array(shift_matrix(k, 16)).T)
                 for k in (1, 5, 17))
assert minus_is_transpose == transposed, (
    f"minus_is_transpose is {minus_is_transpose!r}; compare shift_matrix(-k, 16) with "
    "shift_matrix(k, 16).T entry by entry (np.allclose)")

# %% wrong ch09-shift-backwards
def shift_back(codes, k):  # noqa: F811  (M_kᵀ applied to rows: a move forward)
    return np.asarray(codes) @ shift_matrix(k, np.shape(codes)[-1]).T

# %% wrong ch09-shift-backwards
def shift_matrix(k, d_model):  # noqa: F811  (the rotation's signs swapped)
    m = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        theta = k / 10000 ** (2 * i / d_model)
        m[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[math.cos(theta), -math.sin(theta)],
                                               [math.sin(theta), math.cos(theta)]]
    return m

# %% exercise ch09-raw-position (2 points)
# raw_code(length, d_model): a (length, d_model) NumPy array, row pos = pos in every
#     dimension (the raw position as a code).
# For this code, True or False:
# linear_shift_exists: is there, for each k, a matrix M_k with PE(pos + k) = M_k PE(pos)?
# norm_constant: do all codes have the same norm?
# dot_offset_only: does PE(pos) · PE(pos + k) depend on the offset k only?
# scale_ratio: ‖PE(500)‖ for d_model = 16 divided by the mean norm of 1000 token vectors
#     mt.randn(1000, 16) (drawn after mt.manual_seed(0)), a float: how much larger the code
#     of position 500 is than a token.
# layer_norm_change: with mt.manual_seed(0) and x = mt.randn(1, 6, 16), the largest
#     |LN(x + PE) - LN(x)| where PE holds the raw codes of positions 300 ... 305 and
#     LN = F.layer_norm(·, None, None, 1e-5), a float: what a LayerNorm leaves of the code.
# BEGIN SOLUTION
def raw_code(length, d_model):
    return np.repeat(np.arange(length, dtype=np.float64)[:, None], d_model, axis=1)


linear_shift_exists = False  # M_k PE(0) = M_k 0 = 0 for every M_k, but PE(k) = k·1 ≠ 0
norm_constant = False  # ‖PE(pos)‖ = pos·√d_model
dot_offset_only = False  # PE(pos) · PE(pos + k) = d_model · pos · (pos + k)
mt.manual_seed(0)
tokens = mt.randn(1000, 16).numpy()
scale_ratio = float(np.linalg.norm(raw_code(501, 16)[500])
                    / np.linalg.norm(tokens, axis=1).mean())  # x + PE is almost all position
mt.manual_seed(0)
x = mt.randn(1, 6, 16)
codes = mt.tensor(raw_code(306, 16)[300:].astype(np.float32))
layer_norm_change = float(np.abs(F.layer_norm(x + codes, None, None, 1e-5).numpy()
                                 - F.layer_norm(x, None, None, 1e-5).numpy()).max())
# END SOLUTION

# %% check ch09-raw-position
codes = as_array(raw_code(10, 4))
assert codes.shape == (10, 4), f"raw_code(10, 4) has shape {codes.shape}, not (10, 4)"
assert np.array_equal(codes, np.arange(10.0)[:, None] * np.ones(4)), (
    f"raw_code(10, 4) should hold pos in every dimension of row pos; its rows 0..2 are "
    f"{codes[:3].tolist()}")
norms = np.linalg.norm(codes, axis=1)
dots_1 = (codes[:-1] * codes[1:]).sum(axis=1)  # PE(pos) · PE(pos + 1) for every pos
assert norm_constant == bool(np.allclose(norms, norms[0])), (
    f"norm_constant is {norm_constant!r}, but the norms of raw_code(10, 4)'s rows are "
    f"{np.round(norms, 2).tolist()}")
assert dot_offset_only == bool(np.allclose(dots_1, dots_1[0])), (
    f"dot_offset_only is {dot_offset_only!r}, but PE(pos) · PE(pos + 1) for pos = 0..8 is "
    f"{dots_1.tolist()}")
assert linear_shift_exists is False, (
    f"linear_shift_exists is {linear_shift_exists!r}, but raw_code's row 0 is "
    f"{codes[0].tolist()} and any matrix maps the zero vector to zero, while PE(k) is "
    f"{codes[1].tolist()} for k = 1: adding k·1 is a shift (affine), not a linear map")
assert 480 < scale_ratio < 540, (
    f"scale_ratio is {scale_ratio!r}: divide the norm of raw_code's row 500 (d_model 16) by "
    "the mean of the norms of the rows of mt.randn(1000, 16)")
mt.manual_seed(0)
x = mt.randn(1, 6, 16)
plain = F.layer_norm(x, None, None, 1e-5).numpy()
shifted = F.layer_norm(x + 300.0, None, None, 1e-5).numpy()
floor = np.abs(shifted - plain).max()  # float32 rounding of x + 300
assert 0 <= layer_norm_change < max(10 * floor, 1e-3), (
    f"layer_norm_change is {layer_norm_change!r}: compare F.layer_norm(x + PE, None, None, "
    "1e-5) with F.layer_norm(x, None, None, 1e-5) (not with x itself); a code that is the same "
    "in every dimension is part of the per-position mean")

# %% wrong ch09-raw-position
linear_shift_exists = True  # PE(pos + k) = PE(pos) + k·1 taken for a linear map

# %% wrong ch09-raw-position
layer_norm_change = float(np.abs(F.layer_norm(x + codes, None, None, 1e-5).numpy()  # vs x
                                 - x.numpy()).max())
