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
# # Chapter 7 — Attention, step by step
#
# > An attention function can be described as mapping a query and a set of key-value pairs to an
# > output, where the query, keys, values, and output are all vectors. The output is computed as a
# > weighted sum of the values, where the weight assigned to each value is computed by a
# > compatibility function of the query with the corresponding key.
# > — Vaswani et al., *Attention Is All You Need*, section 3.2
#
# The paper's "scaled dot-product attention" is one line:
#
#     Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V
#
# In this chapter we compute that line by hand, one named intermediate at a time, on a four-token
# sentence; compare it with minitransformer's `scaled_dot_product_attention`; measure why the
# scores are divided by √d_k; and add the masks that let a decoder not peek at the future and let
# a batch contain padding.
#
# **Learning objectives.** After this chapter you can
#
# 1. compute Q, K, V from token vectors and follow Q Kᵀ → scale → softmax → weights · V with the
#    shape of every step;
# 2. read an attention weight matrix: row = query, column = key, each row a distribution;
# 3. explain with a measurement why the scores are divided by √d_k;
# 4. build causal and padding masks (True = may attend) and predict their effect;
# 5. explain why a fully masked row gives zeros rather than NaN;
# 6. gradient-check attention.

# %%
import importlib.util
import math
import os

import numpy as np

import minitransformer as mt
import minitransformer.functional as F

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer random samples when set
SAMPLES = 2_000 if FAST else 20_000
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. A four-token sentence
#
# Each token enters as a vector of size d_model (in a real model: its embedding plus a position
# code, Chapters 9 and 10). We stack the T = 4 vectors as the rows of X, shape (T, d_model). The
# values are random: nothing has been trained, so the attention pattern we get means nothing yet,
# but every step is the real computation.

# %%
tokens = ["the", "cat", "sat", "down"]
T, d_model, d_k = len(tokens), 8, 4

mt.manual_seed(0)
X = mt.randn(T, d_model)  # (T, d_model): one row per token
print("X", X.shape)

# %% [markdown]
# ## 2. Queries, keys and values
#
# Each token plays three roles, each through its own learned projection:
#
# - its **query** q = x W^Q asks "what am I looking for?";
# - its **key** k = x W^K answers "what do I contain?" (matched against queries);
# - its **value** v = x W^V is "what I pass on if chosen".
#
# With all tokens at once: Q = X W^Q, K = X W^K, V = X W^V, each W of shape (d_model, d_k).

# %%
W_Q = mt.randn(d_model, d_k) / math.sqrt(d_model)
W_K = mt.randn(d_model, d_k) / math.sqrt(d_model)
W_V = mt.randn(d_model, d_k) / math.sqrt(d_model)
Q = X @ W_Q  # (T, d_k)
K = X @ W_K  # (T, d_k)
V = X @ W_V  # (T, d_k)
print("Q", Q.shape, " K", K.shape, " V", V.shape)
assert Q.shape == K.shape == V.shape == (T, d_k)

# %% [markdown]
# ## 3. Scores: every query against every key
#
# The compatibility of query i with key j is their dot product qᵢ · kⱼ. All T × T of them at once
# form the matrix Q Kᵀ: row i holds query i's score for each key.

# %%
scores = Q @ K.T  # (T, d_k) @ (d_k, T) -> (T, T)
print("scores = Q Kᵀ", scores.shape)
assert scores.shape == (T, T)
assert np.isclose(scores.numpy()[1, 2], (Q.numpy()[1] * K.numpy()[2]).sum(), atol=1e-6)

# %% [markdown]
# ## 4. Scale, softmax, weighted sum
#
# The scores are divided by √d_k (section 6 says why), and a softmax over each *row* turns query
# i's scores into weights that are positive and sum to 1. The output for token i is then the
# weighted average of the value vectors:
#
#     outputᵢ = Σⱼ weightsᵢⱼ · vⱼ          i.e.   output = weights · V

# %%
# BEGIN SOLUTION
scaled = scores / math.sqrt(d_k)  # (T, T)
weights = scaled.softmax(axis=-1)  # (T, T): row i = how much query i takes from each key
output = weights @ V  # (T, T) @ (T, d_k) -> (T, d_k)
# END SOLUTION

print("attention weights (rows: queries, columns: keys)")
print("       " + "".join(f"{tok:>7}" for tok in tokens))
for tok, row in zip(tokens, weights.numpy()):
    print(f"{tok:>6} " + "".join(f"{w:7.3f}" for w in row))
assert np.allclose(weights.sum(axis=-1).numpy(), 1.0, atol=1e-6), (
    f"each row of weights should sum to 1, got {weights.sum(axis=-1).numpy()}: apply the "
    "softmax to the scaled scores over the keys, axis=-1"
)
assert output.shape == (T, d_k), (
    f"output should be (T, d_k) = {(T, d_k)}, got {output.shape}: output = weights @ V, "
    "(T, T) @ (T, d_k)"
)

# %% [markdown]
# The same matrix as a heatmap: each row is one query's weights and sums to 1, so look at where
# each row's colour concentrates (with random projections there is no meaning in it yet).

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_attention(weights, tokens, "ch07_weights.png",
                                      title="softmax(QKᵀ/√d_k), no mask"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# Every output row is a *convex combination* of the value rows; for the second token ("cat"):

# %%
by_hand = sum(weights.numpy()[1, j] * V.numpy()[j] for j in range(T))
assert np.allclose(output.numpy()[1], by_hand, atol=1e-6), (
    f"output row 1 should be Σⱼ weights[1, j]·V[j] = {by_hand}, got {output.numpy()[1]}: "
    "output = weights @ V (weights on the left, not transposed)"
)

# %% [markdown]
# ## 5. The library's version
#
# `F.scaled_dot_product_attention(q, k, v, mask=None)` does sections 3 and 4 in one call and
# returns both the output and the weights. It accepts any leading axes, (..., T, d_k), usually
# (B, H, T, d_k) for a batch with several heads (Chapter 8).

# %%
lib_output, lib_weights = F.scaled_dot_product_attention(Q, K, V)
assert np.allclose(lib_output.numpy(), output.numpy(), atol=1e-6), (
    f"output differs from the library's by up to "
    f"{np.abs(lib_output.numpy() - output.numpy()).max():.2e}: check scaled = scores / √d_k, "
    "the softmax over axis=-1 and output = weights @ V"
)
assert np.allclose(lib_weights.numpy(), weights.numpy(), atol=1e-6), (
    f"weights differ from the library's by up to "
    f"{np.abs(lib_weights.numpy() - weights.numpy()).max():.2e}: are the scores divided by "
    "√d_k (not d_k, not multiplied) before the softmax over axis=-1?"
)

batched = F.scaled_dot_product_attention(Q.reshape(1, 1, T, d_k), K.reshape(1, 1, T, d_k),
                                         V.reshape(1, 1, T, d_k))[0]  # (B=1, H=1, T, d_k)
assert batched.shape == (1, 1, T, d_k) and np.allclose(batched.numpy()[0, 0], output.numpy()), (
    f"attention on (1, 1, T, d_k) inputs (shape {batched.shape}) does not reproduce output: "
    "check scaled = scores / √d_k, the softmax over axis=-1 and output = weights @ V"
)
print("by hand == F.scaled_dot_product_attention")

# %% [markdown]
# Queries and keys must share d_k, keys and values must share their length S; the values may
# have a different width d_v. Otherwise a `ShapeError` says which sizes clash:

# %%
try:
    F.scaled_dot_product_attention(Q, mt.randn(T, d_k + 1), V)
except mt.ShapeError as error:
    print("ShapeError:", error)
else:
    raise AssertionError("q and k with different d_k must be refused")

# %% [markdown]
# ## 6. Why divide by √d_k?
#
# > We suspect that for large values of d_k, the dot products grow large in magnitude, pushing the
# > softmax function into regions where it has extremely small gradients. To counteract this
# > effect, we scale the dot products by 1/√d_k. (section 3.2.1)
#
# If the components of q and k are independent with mean 0 and variance 1, then q · k = Σᵢ qᵢkᵢ
# is a sum of d_k terms of variance 1: its variance is **d_k**, its typical size √d_k. Let us
# measure it.

# %%
rng = np.random.default_rng(0)
print(" d_k   var(q·k)   var(q·k / √d_k)")
variances = {}  # d_k -> (var of q·k, var of q·k / √d_k)
for dim in (4, 16, 64, 256, 512):
    q_samples = mt.tensor(rng.standard_normal((SAMPLES, dim)))
    k_samples = mt.tensor(rng.standard_normal((SAMPLES, dim)))
    dots = (q_samples * k_samples).sum(axis=-1)  # (SAMPLES,)
    raw, rescaled = dots.var().item(), (dots / math.sqrt(dim)).var().item()
    print(f"{dim:>4}   {raw:8.1f}   {rescaled:8.3f}")
    variances[dim] = (raw, rescaled)
    assert abs(raw / dim - 1) < 0.15 and abs(rescaled - 1) < 0.15

# %% [markdown]
# The unscaled variance grows with the width (it is about d_k itself: on these log-log axes a
# straight line of slope 1), while the scaled one stays flat at 1 whatever the width.

# %%
if HAS_MATPLOTLIB:
    dims = list(variances)
    mt.viz.show(mt.viz.plot_curves(
        {"q·k": (dims, [raw for raw, _ in variances.values()]),
         "q·k / √d_k": (dims, [rescaled for _, rescaled in variances.values()])},
        "ch07_score_variance.png", xlabel="d_k", ylabel="variance of the score",
        logx=True, logy=True, marker="o"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# Scores with a standard deviation of √512 ≈ 23 make the softmax nearly one-hot: the largest score
# takes almost all the weight. The softmax is then *saturated*, and its gradient, p ⊙ (g − p·g),
# nearly vanishes, because every p is close to 0 or 1. We measure both for 16 keys.

# %%
def saturation(dim, scale, keys=16, queries=256):
    """Mean largest weight, and mean |gradient| reaching the scores."""
    q_samples = mt.tensor(rng.standard_normal((queries, dim)))
    k_samples = mt.tensor(rng.standard_normal((keys, dim)))
    s = (q_samples @ k_samples.T) * scale  # (queries, keys)
    s.requires_grad = True
    p = s.softmax(axis=-1)
    p.backward(rng.standard_normal(p.shape))
    return p.max(axis=-1).mean().item(), np.abs(s.grad).mean()


dim = 512
raw_max, raw_grad = saturation(dim, 1.0)
scaled_max, scaled_grad = saturation(dim, 1 / math.sqrt(dim))
print(f"unscaled: mean largest weight {raw_max:.3f}, mean |grad| {raw_grad:.2e}")
print(f"scaled:   mean largest weight {scaled_max:.3f}, mean |grad| {scaled_grad:.2e}")
assert raw_max > 0.8 and scaled_max < 0.5
assert raw_grad < scaled_grad / 5

# %% [markdown]
# ## 7. Masks: who may attend to whom
#
# A mask is a boolean tensor that broadcasts to the scores, (..., T, S), where **True means "may
# attend"**. Before the softmax, the masked scores are replaced by −∞, so they receive weight
# e^{−∞} = 0 and the remaining weights still sum to 1.
#
# (Deviation: PyTorch's `nn.MultiheadAttention` and `nn.Transformer` read a boolean mask the other
# way round, True = blocked. Ours says what each query may see, as the paper's figures draw it.)
#
# **The causal mask.** A decoder predicts token i + 1 from tokens 0..i, so query i must not see
# keys after i. `F.causal_mask(T)` is the lower triangle:

# %%
causal = F.causal_mask(T)  # (T, T) bool
print(causal.numpy().astype(int))
out_causal, w_causal = F.scaled_dot_product_attention(Q, K, V, mask=causal)
print(np.round(w_causal.numpy(), 3))
assert np.all(w_causal.numpy()[~causal.numpy()] == 0)  # nothing above the diagonal
assert np.allclose(w_causal.sum(axis=-1).numpy(), 1.0, atol=1e-6)
assert np.allclose(w_causal.numpy()[0], [1, 0, 0, 0])  # the first token sees only itself

# %% [markdown]
# Next to the unmasked heatmap above: the hatched cells above the diagonal get no weight, and each
# row shares its weight among the keys it may still see, so "the" puts all of it on itself.

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_attention(w_causal, tokens, "ch07_causal_weights.png", mask=causal,
                                      title="with the causal mask"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# The same thing by hand, with `where` and −∞:

# %%
# BEGIN SOLUTION
masked_scores = mt.where(causal, scaled, float("-inf"))
# END SOLUTION
assert np.allclose(masked_scores.softmax(axis=-1).numpy(), w_causal.numpy(), atol=1e-6), (
    "softmax(masked_scores) differs from the causal weights: keep scaled where causal is True "
    "(True = may attend) and put -inf elsewhere; check the mask's orientation, the -inf fill "
    "and that you start from scaled = scores / √d_k"
)

# %% [markdown]
# Causality has a testable consequence: changing a *later* token cannot change an earlier output.
# We change the value vector of the last token; outputs 0..2 stay exactly the same.

# %%
V_changed = mt.concat([V[: T - 1], V[T - 1 :] + 10.0], axis=0)
out_changed, _ = F.scaled_dot_product_attention(Q, K, V_changed, mask=causal)
assert np.array_equal(out_changed.numpy()[: T - 1], out_causal.numpy()[: T - 1])
assert not np.allclose(out_changed.numpy()[T - 1], out_causal.numpy()[T - 1])
print("earlier outputs ignore a change to the last token")

# %% [markdown]
# **The padding mask.** A batch holds sequences of different lengths, padded with a `pad_id` to
# the longest. No query should attend to a padding key. `F.padding_mask(ids, pad_id)` marks the
# real tokens and has shape (B, 1, 1, S), ready to broadcast over heads (H) and queries (T).

# %%
PAD = 0
ids = mt.tensor([[5, 7, 2, 9], [4, 8, PAD, PAD]])  # (B=2, S=4): the second has 2 real tokens
keep = F.padding_mask(ids, PAD)
print("padding mask", keep.shape, "\n", keep.numpy()[:, 0, 0].astype(int))
assert keep.shape == (2, 1, 1, 4)

mt.manual_seed(1)
q4, k4, v4 = (mt.randn(2, 1, T, d_k) for _ in range(3))  # (B, H, T, d_k) each
out_pad, w_pad = F.scaled_dot_product_attention(q4, k4, v4, mask=keep)
assert w_pad.shape == (2, 1, T, T)
assert np.all(w_pad.numpy()[1, :, :, 2:] == 0)  # nobody attends to the padding
assert np.allclose(w_pad.sum(axis=-1).numpy(), 1.0, atol=1e-6)

# %% [markdown]
# The two combine with `&`: a decoder over a padded batch uses `causal_mask(T) & padding_mask(...)`,
# which broadcasts (T, T) & (B, 1, 1, T) to (B, 1, T, T).

# %%
both = F.causal_mask(T) & keep
assert both.shape == (2, 1, T, T)
print(both.numpy()[1, 0].astype(int))

# %% [markdown]
# ## 8. A fully masked row gives zeros, not NaN
#
# What if a query may attend to *nothing*? It happens: with a causal mask over a sequence padded
# on the left, the first query may see only key 0, which is padding. Its row of scores is then
# all −∞, and a naive softmax computes
# e^{−∞ − (−∞)} = e^{NaN}, and the NaN then spreads through every later layer and into the
# gradients. minitransformer's softmax returns a row of zero weights, so the output for that query
# is the zero vector, and no NaN appears in the output or in any gradient.

# %%
nothing = mt.tensor(np.array([[True, True, False, False],
                              [False, False, False, False],  # query 1 may attend to nothing
                              [True, True, True, True],
                              [True, False, True, False]]))
q1 = Q.detach()
q1.requires_grad = True
out_none, w_none = F.scaled_dot_product_attention(q1, K, V, mask=nothing)
print("weights of the fully masked row:", w_none.numpy()[1], " output:", out_none.numpy()[1])
assert np.all(w_none.numpy()[1] == 0) and np.all(out_none.numpy()[1] == 0)
out_none.sum().backward()
assert not np.isnan(q1.grad).any() and np.all(q1.grad[1] == 0)

with np.errstate(invalid="ignore"):
    row = np.full(4, -np.inf, dtype=np.float32)
    naive = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
print("a naive softmax of that row:", naive)
assert np.isnan(naive).all()

# %% [markdown]
# ## 9. Gradient check of attention
#
# Attention is a composition of ops we have already checked (matmul, scale, `where`, softmax,
# matmul), so its gradient comes from the chain rule. We check it end to end anyway, with respect
# to Q, K and V at once, with and without a mask. Both outputs count: the weights too are a
# differentiable function of Q and K. The bool mask is not differentiable; the checker skips it.

# %%
mt.manual_seed(2)
q, k, v = mt.randn(2, 2, 3, d_k), mt.randn(2, 2, 5, d_k), mt.randn(2, 2, 5, 6)  # S=5, d_v=6
cross_mask = F.padding_mask(mt.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]), 0)  # (B, 1, 1, S)


def attend(q, k, v, mask=None):
    return F.scaled_dot_product_attention(q, k, v, mask=mask)  # (output, weights)


assert mt.gradcheck(attend, q, k, v)
assert mt.gradcheck(attend, q, k, v, cross_mask)
assert mt.gradcheck(lambda a, b, c: attend(a, b, c, nothing), Q, K, V)
print("scaled dot-product attention passes gradcheck, with and without masks")

# %% [markdown]
# ## Summary
#
# - Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V: scores (T, S) compare every query with every
#   key, the row-wise softmax turns them into weights, and each output is a weighted average of
#   the value vectors.
# - Q = X W^Q, K = X W^K, V = X W^V: each token asks, is matched, and contributes through its own
#   projection.
# - q · k has variance d_k for unit-variance components; dividing by √d_k keeps the softmax out of
#   saturation, where its gradient vanishes.
# - Masks broadcast to (..., T, S) with True = may attend; masked scores become −∞ before the
#   softmax. `causal_mask(T)` hides the future; `padding_mask(ids, pad_id)`, shape (B, 1, 1, S),
#   hides padding; combine them with `&`.
# - A fully masked row gives zero weights and a zero output, never NaN.
#
# ## Exercises
#
# ```{exercise} Attention weights you can read
# :label: ch07-interpretable
#
# Make the attention weights of section 4 *interpretable*: choose X, W^Q and W^K by hand so
# that "sat" attends mostly to "cat" and every other token mostly to itself.
# ```
#
# ````{solution} ch07-interpretable
# :class: dropdown
#
# Give each token a one-hot vector (X = I, d_model = d_k = 4) and let the keys be the tokens
# themselves (W^K = I). Then the score of query i for key j is row i of W^Q dotted with e_j, so
# row i of W^Q simply *names* the key token i should look for, and its size sets how sharp the
# softmax is. Every token looks for itself, except "sat" (row 2), which looks for "cat":
#
# ```python
# X_hand = mt.tensor(np.eye(4, dtype=np.float32))      # the, cat, sat, down
# W_K_hand = mt.tensor(np.eye(4, dtype=np.float32))
# w_q = 5.0 * np.eye(4, dtype=np.float32)
# w_q[2] = 5.0 * np.eye(4, dtype=np.float32)[1]         # "sat" asks for "cat"
# _, w = F.scaled_dot_product_attention(X_hand @ mt.tensor(w_q), X_hand @ W_K_hand,
#                                       X_hand @ W_K_hand)
# print(np.round(w.numpy(), 3))
# # [[0.802 0.066 0.066 0.066]
# #  [0.066 0.802 0.066 0.066]
# #  [0.066 0.802 0.066 0.066]     <- "sat" attends to "cat"
# #  [0.066 0.066 0.066 0.802]]
# ```
#
# A matching score is 5/√4 = 2.5 and the others 0, so the winner gets e^2.5/(e^2.5 + 3) = 0.80;
# a larger factor than 5 makes the pattern sharper.
# ````
#
# ```{exercise} Components of variance 2
# :label: ch07-variance-two
#
# Repeat the measurement of section 6 with components of variance 2. By what should the scores
# be divided now? What in a real model (initialisation, LayerNorm) keeps the components of q
# and k near unit variance, at least at the start of training?
# ```
#
# ````{solution} ch07-variance-two
# :class: dropdown
#
# Each product qᵢkᵢ now has variance 2 · 2 = 4, so var(q·k) = 4 d_k. With 20,000 samples:
#
# | d_k | var(q·k) | var(q·k / √d_k) | var(q·k / (2√d_k)) |
# |---|---|---|---|
# | 4 | 16.0 | 4.00 | 1.00 |
# | 64 | 258.0 | 4.03 | 1.01 |
# | 512 | 2032.6 | 3.97 | 0.99 |
#
# (`rng.standard_normal((20000, dim)) * np.sqrt(2)` for q and k.) Dividing by √d_k leaves the
# scores twice as wide as intended; the right divisor is √(d_k · σ_q² · σ_k²) = 2√d_k. In a
# real model the input to each attention layer comes out of a LayerNorm (or an embedding scaled
# to unit size), so its components have variance about 1 (times γ, which starts at 1), and
# Xavier-initialised W^Q and W^K roughly preserve that variance (Chapter 6), so q and k start
# near unit variance. Training is free to grow W^Q and W^K; then the scores sharpen because the
# model *learned* to, not by accident of scale.
# ````
#
# ```{exercise} Masking after the softmax
# :label: ch07-mask-after-softmax
#
# Apply the mask *after* the softmax instead (multiply the weights by the mask). Which property
# of section 7 breaks? Check whether causality (earlier outputs unchanged) still holds.
# ```
#
# ````{solution} ch07-mask-after-softmax
# :class: dropdown
#
# ```python
# w_after = scaled.softmax(axis=-1) * causal            # bool mask promotes to 0/1
# out_after = w_after @ V
# print(w_after.sum(axis=-1).numpy())                   # [0.167 0.746 0.468 1.   ]
# V_later = mt.concat([V[: T - 1], V[T - 1 :] + 10.0], axis=0)
# print(np.array_equal((w_after @ V_later).numpy()[: T - 1], out_after.numpy()[: T - 1]))  # True
# K_later = mt.concat([K[: T - 1], K[T - 1 :] + 10.0], axis=0)
# w_after_k = ((Q @ K_later.T) / math.sqrt(d_k)).softmax(axis=-1) * causal
# print(np.abs((w_after_k @ V).numpy()[: T - 1] - out_after.numpy()[: T - 1]).max())  # 0.263
# ```
#
# The rows no longer sum to 1 (only the last row, which masks nothing, does): each output is a
# shrunken, no longer convex, combination of the values. Causality holds only half-way: a later
# token's *value* gets weight 0, so the check of section 7 (changing V of the last token) still
# passes, but its *key* still sits in every earlier softmax's normaliser. Changing the last key
# changes the earlier outputs by up to 0.26, whereas with the mask applied before the softmax
# the same change leaves them exactly equal. A decoder trained this way could read the future
# through the normaliser.
# ````
#
# ```{exercise} A causal mask with more keys than queries
# :label: ch07-causal-rectangle
#
# `causal_mask(T, S)` with S > T makes the last T of S positions the queries. Print
# `F.causal_mask(2, 5)`, and explain why a decoder that generates one token at a time (keeping
# the keys and values of earlier tokens) needs exactly this shape.
# ```
#
# ```{solution} ch07-causal-rectangle
# :class: dropdown
#
#     [[1 1 1 1 0]
#      [1 1 1 1 1]]
#
# The two queries are positions 3 and 4 of a 5-token sequence: query 3 may see keys 0..3,
# query 4 keys 0..4. A decoder that generates step by step keeps the keys and values of all
# tokens so far (a *cache*) and computes queries only for the new token(s). At each step the
# scores are then (T_new, S) with S = tokens so far, and the new queries sit at the *end* of the
# sequence, so the right mask is the bottom T rows of the S × S causal triangle, which is what
# `causal_mask(T, S)` returns. With T = 1 it is a row of S Trues: the newest token may see
# everything before it, and there is nothing after it to hide.
# ```
