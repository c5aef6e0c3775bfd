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
# # Chapter 9 — Positional encoding
#
# > Since our model contains no recurrence and no convolution, in order for the model to make use
# > of the order of the sequence, we must inject some information about the relative or absolute
# > position of the tokens in the sequence.
# > — *Attention Is All You Need*, section 3.5
#
# Attention compares every token with every other token, but nothing in softmax(QKᵀ/√d_k)V knows
# *where* a token stands. "dog bites man" and "man bites dog" would look the same. This chapter
# proves that claim, then adds the paper's fix, a fixed sinusoidal code per position, and verifies
# its defining property: a shift in position is a rotation of the code. Finally we meet the
# alternative used by BERT and GPT, a learned vector per position.
#
# **Learning objectives.** After this chapter you can
#
# 1. show that self-attention without positions is *permutation equivariant*, and what that means
#    for word order;
# 2. write down the sinusoidal encoding and check minitransformer's table against the formula;
# 3. verify that PE(pos + k) is a fixed rotation of PE(pos) in each frequency pair;
# 4. use `LearnedPositionalEmbedding` and say how it differs;
# 5. read the error for a sequence longer than `max_len`.

# %%
import importlib.util
import math
import os

import numpy as np

import minitransformer as mt
from minitransformer import nn

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # a shorter table to verify when set
D = 16  # d_model
MAX_LEN = 64 if FAST else 512
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. Attention cannot see order
#
# Take an encoder (two layers of self-attention and feed-forward, Chapter 10) and feed it token
# vectors *without* any position information. Now shuffle the tokens. Every layer treats each
# position with the same weights, and attention's weighted sum does not care in which order the
# keys come, so the outputs are shuffled the same way and otherwise unchanged:
#
#     f(P x) = P f(x)         for every permutation P     (permutation equivariance)

# %%
mt.manual_seed(0)
vocab = {"dog": 1, "bites": 2, "man": 3}
embed = nn.Embedding(len(vocab) + 1, D)
encoder = nn.Encoder(n_layers=2, d_model=D, n_heads=2, d_ff=32, dropout=0.0)

sentence = mt.tensor([[vocab["dog"], vocab["bites"], vocab["man"]]])  # (B=1, T=3)
swapped = mt.tensor([[vocab["man"], vocab["bites"], vocab["dog"]]])
order = [2, 1, 0]  # swapped = sentence read in this order

out = encoder(embed(sentence))  # (1, 3, D)
out_swapped = encoder(embed(swapped))
assert np.allclose(out_swapped.numpy()[0], out.numpy()[0, order], atol=1e-5)
print("without positions: encoder(permuted tokens) == permuted encoder(tokens)")

# %% [markdown]
# So "dog" gets the same vector whether it bites or is bitten, and any summary of the sentence
# that does not depend on position (a mean over tokens, as a classifier might use) is identical:

# %%
assert np.allclose(out.mean(axis=1).numpy(), out_swapped.mean(axis=1).numpy(), atol=1e-5)
print("'dog bites man' and 'man bites dog' have the same mean vector")

# %% [markdown]
# ## 2. The sinusoidal encoding
#
# The paper adds to each token vector a code that depends only on its position pos:
#
#     PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
#     PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))
#
# Dimension pair i is a sine and a cosine of the same angular frequency
# ωᵢ = 10000^(−2i/d_model), so the wavelengths grow geometrically from 2π (i = 0: changes at every
# step) to almost 10000 · 2π (the last pair: nearly constant over any sentence). Like the digits
# of a counter, fast and slow pairs together tell every position apart.
#
# `nn.SinusoidalPositionalEncoding(d_model, max_len)` precomputes the (max_len, d_model) table as
# a buffer (state, but not a trained parameter) and adds its first T rows to x.

# %%
pe = nn.SinusoidalPositionalEncoding(D, max_len=MAX_LEN)
print(pe, " table", pe.table.shape, " parameters:", pe.num_parameters())
assert pe.table.shape == (MAX_LEN, D) and pe.num_parameters() == 0

# %% [markdown]
# We rebuild the table straight from the formula, with two Python loops, and compare.

# %%
by_formula = np.zeros((MAX_LEN, D))
for pos in range(MAX_LEN):
    for i in range(D // 2):
        # BEGIN SOLUTION
        angle = pos / 10000 ** (2 * i / D)
        by_formula[pos, 2 * i] = math.sin(angle)
        by_formula[pos, 2 * i + 1] = math.cos(angle)
        # END SOLUTION

table = pe.table.numpy()
print("PE(0) =", np.round(table[0], 3))  # sin 0 = 0, cos 0 = 1
print("PE(1) =", np.round(table[1], 3))
assert np.allclose(table, by_formula, atol=1e-6), (
    f"by_formula differs from the module's table first at (pos, column) "
    f"{tuple(int(i) for i in np.argwhere(~np.isclose(table, by_formula, atol=1e-6))[0])}: "
    "angle = pos / 10000^(2i/D), sin in column 2i, cos in column 2i + 1"
)
assert np.allclose(table[0], [0, 1] * (D // 2))

# %% [markdown]
# The whole table as an image, one column per position: look at the stripes, fast in the first
# dimensions (the top rows) and ever slower further down, like the digits of a counter.

# %%
if HAS_MATPLOTLIB:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 2.8), layout="constrained")
    image = axis.imshow(table.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
    axis.set(xlabel="position pos", ylabel="dimension", title="sinusoidal PE, d_model = 16")
    figure.colorbar(image, ax=axis)
    figure.savefig("ch09_sinusoidal_table.png", dpi=110)
    plt.close(figure)
    mt.viz.show("ch09_sinusoidal_table.png")
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# The module adds the code to its input, whatever the batch size, for the input's length T:

# %%
x = mt.randn(2, 5, D)  # (B, T, D)
assert np.allclose((pe(x) - x).numpy(), np.broadcast_to(table[:5], (2, 5, D)), atol=1e-6)

# %% [markdown]
# With positions added, the encoder of section 1 does tell the two sentences apart: the swapped
# sentence's outputs are no longer a permutation of the original's.

# %%
with_pos = encoder(pe(embed(sentence)))
with_pos_swapped = encoder(pe(embed(swapped)))
assert not np.allclose(with_pos_swapped.numpy()[0], with_pos.numpy()[0, order], atol=1e-3)
assert not np.allclose(with_pos.mean(axis=1).numpy(), with_pos_swapped.mean(axis=1).numpy(),
                       atol=1e-3)
print("with positions: the order matters")

# %% [markdown]
# ## 3. A shift in position is a rotation
#
# > We chose this function because we hypothesized it would allow the model to easily learn to
# > attend by relative positions, since for any fixed offset k, PE_{pos+k} can be represented as a
# > linear function of PE_pos.
#
# For one frequency ω, the angle-addition formulas give
#
#     sin(ω(pos + k)) =  cos(ωk) · sin(ω pos) + sin(ωk) · cos(ω pos)
#     cos(ω(pos + k)) = −sin(ωk) · sin(ω pos) + cos(ωk) · cos(ω pos)
#
# so the pair (sin, cos) at pos + k is the pair at pos multiplied by the 2 × 2 rotation
#
#     R(ωk) = [[ cos ωk,  sin ωk],
#              [−sin ωk,  cos ωk]]
#
# which depends on the offset k but **not** on pos. Stacking one rotation per pair gives a
# block-diagonal matrix M_k with PE(pos + k) = M_k PE(pos) for every pos. (We multiply row
# vectors from the right, so we use M_kᵀ.)

# %%
def shift_matrix(k, d_model):
    """The block-diagonal M_k with PE(pos + k) = M_k PE(pos)."""
    m = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        # BEGIN SOLUTION
        theta = k / 10000 ** (2 * i / d_model)  # ω_i · k
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[math.cos(theta), math.sin(theta)],
                                                   [-math.sin(theta), math.cos(theta)]]
        # END SOLUTION
    return m


for k in (1, 5, 17):
    shifted = table[:-k] @ shift_matrix(k, D).T  # M_k applied to every PE(pos)
    error = np.abs(shifted - table[k:]).max()
    print(f"k = {k:>2}: max |M_k PE(pos) - PE(pos + k)| over {MAX_LEN - k} positions = {error:.1e}")
    assert error < 1e-5, (
        f"M_{k} PE(pos) differs from PE(pos + {k}) by up to {error:.1e}: block i (rows and "
        "columns 2i, 2i + 1) should be [[cos θ, sin θ], [-sin θ, cos θ]], θ = k / 10000^(2i/d)"
    )

# %% [markdown]
# Two consequences. A rotation preserves length, so every code has the same norm √(d_model/2)
# (each pair has sin² + cos² = 1). And the dot product of two codes depends only on their offset,
# PE(pos) · PE(pos + k) = Σᵢ cos(ωᵢ k), which a query–key product can pick up.

# %%
norms = np.linalg.norm(table, axis=1)
assert np.allclose(norms, math.sqrt(D / 2), atol=1e-5)
for k in (1, 3):
    dots = (table[:-k] * table[k:]).sum(axis=1)  # PE(pos) · PE(pos + k) for every pos
    expected = sum(math.cos(k / 10000 ** (2 * i / D)) for i in range(D // 2))
    assert np.allclose(dots, expected, atol=1e-4)
print(f"every code has norm √(d_model/2) = {math.sqrt(D / 2):.4f}; dot products depend on k only")

# %% [markdown]
# The dot product PE(0) · PE(k) against the offset k: look at the maximum d_model/2 = 8 at k = 0
# (every code matches itself best) and the bumpy, only rough fall after it: with d_model = 16
# the slow pairs barely change, so distant positions still look somewhat alike.

# %%
if HAS_MATPLOTLIB:
    offsets = np.arange(MAX_LEN)
    mt.viz.show(mt.viz.plot_curves({"PE(0) · PE(k)": (offsets, table[0] @ table.T)},
                                   "ch09_dot_by_offset.png", xlabel="offset k",
                                   ylabel="dot product"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# ## 4. Learned positional embeddings
#
# The alternative: one trained vector per position, a (max_len, d_model) table of parameters
# (BERT, GPT). The paper found both "nearly identical" in quality; the sinusoids need no training
# and have no parameters, the learned table can adapt to the data. minitransformer initialises it
# N(0, 0.02²), small next to the token embeddings.
#
# Note the argument order, `LearnedPositionalEmbedding(max_len, d_model)`, as `Embedding(rows,
# dim)`; the sinusoidal module takes `(d_model, max_len)`.

# %%
mt.manual_seed(1)
learned = nn.LearnedPositionalEmbedding(MAX_LEN, D)
print(learned, [(name, p.shape) for name, p in learned.named_parameters()])
assert learned.num_parameters() == MAX_LEN * D
assert abs(learned.weight.numpy().std() - 0.02) < 0.004

x = mt.randn(2, 5, D)
y = learned(x)
assert np.allclose((y - x).numpy(), np.broadcast_to(learned.weight.numpy()[:5], (2, 5, D)),
                   atol=1e-6)

# %% [markdown]
# Only the positions that occur receive a gradient. Training on sentences of at most 5 tokens
# leaves every later row at its initial value: a learned table cannot say anything about lengths
# it never saw, while the sinusoids are defined for any position.

# %%
y.sum().backward()
grad = learned.weight.grad
assert np.all(grad[:5] == 2.0)  # each used position, summed over the batch of 2
assert np.all(grad[5:] == 0.0)
print("rows with a gradient:", int((np.abs(grad).sum(axis=1) > 0).sum()), "of", MAX_LEN)

# %% [markdown]
# ## 5. Longer than `max_len`
#
# Both modules hold codes for `max_len` positions. A longer sequence is refused with a message that
# says which positions were asked for and what the limit is:

# %%
for module in (pe, learned):
    try:
        module(mt.zeros(1, MAX_LEN + 1, D))
    except mt.ShapeError as error:
        print("ShapeError:", error)
        assert f"max_len is {MAX_LEN}" in str(error)
    else:
        raise AssertionError("a sequence longer than max_len must be refused")

# %% [markdown]
# `offset` serves generation one token at a time: the new token at position t asks for code t
# alone, and the limit counts from the offset.

# %%
last = pe(mt.zeros(1, 1, D), offset=7)  # the code of position 7
assert np.allclose(last.numpy()[0, 0], table[7])
try:
    pe(mt.zeros(1, 2, D), offset=MAX_LEN - 1)
except mt.ShapeError as error:
    print("ShapeError:", error)
else:
    raise AssertionError("positions beyond max_len must be refused, offset included")

# %% [markdown]
# ## Summary
#
# - Self-attention and position-wise layers are permutation equivariant: without positions,
#   shuffling the tokens shuffles the outputs and changes nothing else.
# - The sinusoidal code puts sin and cos of pos · 10000^(−2i/d_model) in dimension pair i:
#   wavelengths from 2π to 10000 · 2π, no parameters, any position.
# - PE(pos + k) = M_k PE(pos), with M_k a rotation per frequency pair that depends only on k;
#   codes have equal norms and offset-only dot products.
# - `LearnedPositionalEmbedding(max_len, d_model)` trains one vector per position; positions never
#   seen in training never move.
# - Both modules refuse positions at or beyond `max_len`; `offset` picks the codes for a decoder
#   that generates one token at a time.
#
# ## Exercises
#
# ```{exercise} Causal attention is not fully blind to order
# :label: ch09-causal-order
#
# Show that a *causal* self-attention layer without positions is not fully blind to order:
# which outputs change when you swap two tokens, and which stay the same?
# ```
#
# ````{solution} ch09-causal-order
# :class: dropdown
#
# ```python
# import minitransformer.functional as F
#
# mt.manual_seed(0)
# mha = nn.MultiHeadAttention(D, 2)
# tokens = mt.randn(1, 6, D)
# swap = [0, 4, 2, 3, 1, 5]            # swap positions 1 and 4
# mask = F.causal_mask(6)
# a = mha(tokens, tokens, tokens, mask=mask).numpy()[0]
# b = mha(tokens[:, swap], tokens[:, swap], tokens[:, swap], mask=mask).numpy()[0]
# print([bool(np.allclose(a[t], b[t], atol=1e-6)) for t in range(6)])
# # [True, False, False, False, False, True]
# ```
#
# Swapping positions i < j leaves the outputs *before* i unchanged (they never see either token)
# and the outputs *after* j unchanged (the same query sees the same set of keys, and attention
# ignores their order). The outputs at i … j change: position i now sees a different token, the
# positions in between see the later token instead of the earlier one, and position j has a
# different query. So, unlike the encoder of section 1, the output is not simply permuted: a
# causal prefix carries order information (position 0 always attends only to itself). The
# invariance after j holds for one layer only: in a two-layer causal `nn.Encoder` (same
# swap), position 5 changes too, because the layer below has already made positions 1 … 4
# order-dependent. This is why decoder-only models can learn some position information even
# without positional encodings, but not reliably enough to do without them.
# ````
#
# ```{exercise} Wavelengths and the fastest pair
# :label: ch09-wavelengths
#
# Compute the smallest and the largest wavelength of the sinusoidal encoding for d_model = 512,
# and the first position pos > 0 at which the fastest pair's cosine rounds to exactly 1.0 in
# float32, as at position 0. Does the fastest (sin, cos) pair as a whole come back?
# ```
#
# ```{solution} ch09-wavelengths
# :class: dropdown
#
# Pair i has wavelength λᵢ = 2π · 10000^(2i/d_model) for i = 0 … 255: the smallest is
# λ₀ = 2π ≈ 6.283 positions, the largest λ₂₅₅ = 2π · 10000^(510/512) ≈ 60,611 (not quite
# 2π · 10000 = 62,832, since the exponent stops at 510/512).
#
# The fastest pair is (sin pos, cos pos). Positions are integers and 2π is irrational, so it
# never repeats exactly; it comes back close whenever pos is near a multiple of 2π. Scanning
# pos = 1, 2, … for the distance |pos mod 2π| gives new records at 6, 19, 25, 44, 333 and
# **710**, where 710 = 113 · 2π + 6.0e-5 (the famous π ≈ 355/113). There 1 − cos = 1.8e-9,
# below float32's resolution just under 1, so `np.float32(math.cos(710)) == 1.0`. The sine,
# however, is 6.0e-5, which float32 represents easily, so the pair as a whole still differs
# from position 0. For the whole pair to round to the same float32 values, the distance must be
# below about 1e-7; scanning up to 40 million, the first offset that close is 10,838,702
# (distance 7.6e-8). Either way the slower pairs tell such positions apart.
# ```
#
# ```{exercise} Shifting backwards
# :label: ch09-shift-backwards
#
# Build M_{−k} with `shift_matrix(-k, D)`. Check that it is the inverse of M_k and also its
# transpose. What does that say about moving *backwards* in position?
# ```
#
# ````{solution} ch09-shift-backwards
# :class: dropdown
#
# ```python
# for k in (1, 5, 17):
#     forward, backward = shift_matrix(k, D), shift_matrix(-k, D)
#     print(k, np.abs(backward @ forward - np.eye(D)).max(), np.abs(backward - forward.T).max())
# # 1 1.1e-16 0.0 / 5 1.1e-16 0.0 / 17 2.2e-16 0.0
# print(np.abs(table[5:] @ shift_matrix(-5, D).T - table[:-5]).max())  # 5.8e-08
# ```
#
# M₋ₖ M_k = I to rounding, and M₋ₖ equals M_kᵀ exactly: each block is a rotation by −ωᵢk, and a
# rotation's inverse is its transpose (M_k is orthogonal). So moving back by k is the same kind
# of fixed linear map as moving forward, PE(pos − k) = M_kᵀ PE(pos), and it undoes the forward
# move exactly. Relative position in either direction is available to a linear layer, and
# since orthogonal maps keep lengths and angles, shifting never changes the geometry of the
# codes.
# ````
#
# ```{exercise} The raw position as a code
# :label: ch09-raw-position
#
# Replace the sinusoids by the raw position, PE(pos) = pos in every dimension. Which of the
# properties of section 3 fail, and what happens to the scale of x + PE for long sequences?
# ```
#
# ````{solution} ch09-raw-position
# :class: dropdown
#
# All three fail. PE(pos + k) = PE(pos) + k · 1 is a shift, not a *linear* map of PE(pos): no
# matrix M_k can send PE(0) = 0 to k · 1. The norm is pos · √d_model, no longer constant, and
# PE(pos) · PE(pos + k) = d_model · pos · (pos + k) depends on pos, not only on k.
#
# The scale is the worse problem: token embeddings have entries of size about 1, while position
# 500 adds 500 to every entry, so x + PE is almost entirely position and the token is a rounding
# error; the scores of the first attention layer grow like pos², saturating the softmax
# (Chapter 7). And since the code is the same in every dimension, a LayerNorm removes it
# completely, since it subtracts the per-position mean:
#
# ```python
# import minitransformer.functional as F
#
# x = mt.randn(1, 6, D)
# print(np.abs(F.layer_norm(x + 300.0, None, None, 1e-5).numpy()
#              - F.layer_norm(x, None, None, 1e-5).numpy()).max())  # ~3e-05: rounding
# ```
#
# so a pre-LN model would never see it. Bounded sinusoids of many frequencies avoid all of this.
# ````
