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
# # Chapter 8 — Multi-head attention
#
# > Instead of performing a single attention function with d_model-dimensional keys, values and
# > queries, we found it beneficial to linearly project the queries, keys and values h times with
# > different, learned linear projections to d_k, d_k and d_v dimensions, respectively.
# > — *Attention Is All You Need*, section 3.2.2
#
#     MultiHead(Q, K, V) = Concat(head₁, …, head_h) W^O
#     headᵢ = Attention(Q Wᵢ^Q, K Wᵢ^K, V Wᵢ^V)
#
# One attention head computes one weighted average per query, so it can follow one relation at a
# time ("which noun does this verb belong to?"). Several heads, each in a smaller subspace, can
# follow several relations in parallel, for the same cost as one full-width head. This chapter
# computes multi-head attention by hand with the weights of `nn.MultiHeadAttention`, and checks
# that both agree to the last digit.
#
# **Learning objectives.** After this chapter you can
#
# 1. explain how the h projections Wᵢ^Q sit side by side in one d_model × d_model matrix, and
#    split a projection into heads with `reshape` and `swapaxes`, naming every shape;
# 2. run attention in every head at once, concatenate the heads and apply W^O;
# 3. reproduce `nn.MultiHeadAttention` exactly from its own weights;
# 4. read `attention_weights`, shape (B, H, T, S);
# 5. tell self-attention from cross-attention by what is passed as query, key and value;
# 6. count the parameters: 4 · d_model² + 4 · d_model.

# %%
import importlib.util
import os

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # smaller gradient check when set
B, T, S = 2, 4, 6  # batch, target (query) length, source (key/value) length
D, H = 8, 2  # d_model, heads
Dh = D // H  # d_k = d_v = d_model / h per head
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. The module
#
# `nn.MultiHeadAttention(d_model, n_heads)` holds four `Linear` layers, `w_q`, `w_k`, `w_v` and
# `w_o`, each d_model × d_model (stored as (in, out), Chapter 6). Its forward takes
# `(query, key, value, mask=None)`; self-attention passes one tensor three times.

# %%
mt.manual_seed(0)
mha = nn.MultiHeadAttention(d_model=D, n_heads=H)
print(mha)
for name, parameter in mha.named_parameters():
    print(f"  {name:<10} {parameter.shape}")
x = mt.randn(B, T, D)  # (B, T, D)
out = mha(x, x, x)  # self-attention
assert out.shape == (B, T, D)

# %% [markdown]
# ## 2. All heads' projections in one matrix
#
# The paper gives each head i its own Wᵢ^Q of shape d_model × d_k. Putting the h of them side by
# side gives one d_model × (h · d_k) = d_model × d_model matrix:
#
#     W^Q = [ W₁^Q | W₂^Q | … | W_h^Q ]
#
# so a *single* matmul x W^Q computes every head's queries, and head i's queries are the columns
# i·d_k … (i+1)·d_k − 1 of the result. We take the weights out of the module (`state_dict()` gives
# NumPy copies) and compute by hand.

# %%
weights = {name: mt.tensor(array) for name, array in mha.state_dict().items()}
Wq, bq = weights["w_q.weight"], weights["w_q.bias"]  # (D, D), (D,)
Wk, bk = weights["w_k.weight"], weights["w_k.bias"]
Wv, bv = weights["w_v.weight"], weights["w_v.bias"]
Wo, bo = weights["w_o.weight"], weights["w_o.bias"]

Q = x @ Wq + bq  # (B, T, D): every head's queries at once
K = x @ Wk + bk  # (B, T, D)
V = x @ Wv + bv  # (B, T, D)

head = 1  # head 1's own projection W_1^Q is a slice of W^Q's columns
cols = slice(head * Dh, (head + 1) * Dh)
assert np.allclose(Q.numpy()[..., cols], (x @ Wq[:, cols] + bq[cols]).numpy(), atol=1e-6)

# %% [markdown]
# ## 3. Splitting into heads
#
# To let each head attend on its own, we move the head index next to the batch index, so that the
# attention of Chapter 7, which works on any leading axes (..., T, d_k), runs for all (B, H) pairs
# at once:
#
#     (B, T, D) --reshape--> (B, T, H, Dh) --swapaxes(1, 2)--> (B, H, T, Dh)
#
# The reshape cuts each D-vector into H consecutive chunks of Dh: chunk i is exactly the columns
# of head i from section 2. The swap only reorders axes.

# %%
def split_heads(t):
    batch, length, _ = t.shape
    # BEGIN SOLUTION
    t = t.reshape(batch, length, H, Dh)  # (B, L, H, Dh)
    return t.swapaxes(1, 2)  # (B, H, L, Dh)
    # END SOLUTION


q_heads, k_heads, v_heads = split_heads(Q), split_heads(K), split_heads(V)  # (B, H, T, Dh)
print("Q", Q.shape, "-> heads", q_heads.shape)
assert q_heads.shape == (B, H, T, Dh), (
    f"split_heads(Q) should be (B, H, T, Dh) = {(B, H, T, Dh)}, got {q_heads.shape}: reshape "
    "to (batch, length, H, Dh), then swap axes 1 and 2"
)
assert np.array_equal(q_heads.numpy()[:, head], Q.numpy()[..., cols]), (  # head i = its columns
    f"head {head} should hold Q's columns {cols.start}:{cols.stop}: reshape the last axis to "
    "(H, Dh), in that order, then swapaxes(1, 2) (a reshape alone mixes tokens and heads)"
)

# %% [markdown]
# ## 4. Attention in every head, then Concat and W^O
#
# First one head at a time, as the paper writes it, with the formula of Chapter 7. Each head has
# its own (T, T) weight matrix.

# %%
scale = 1.0 / np.sqrt(Dh)
heads, head_weights = [], []
for i in range(H):
    q_i, k_i, v_i = q_heads[:, i], k_heads[:, i], v_heads[:, i]  # (B, T, Dh) each
    w_i = (q_i @ k_i.swapaxes(-1, -2) * scale).softmax(axis=-1)  # (B, T, T)
    heads.append(w_i @ v_i)  # (B, T, Dh)
    head_weights.append(w_i)

concat = mt.concat(heads, axis=-1)  # Concat(head_1, ..., head_h): (B, T, H * Dh) = (B, T, D)
manual = concat @ Wo + bo  # (B, T, D)
print("concat", concat.shape, " output", manual.shape)
print("largest difference from the module:", np.abs(manual.numpy() - out.numpy()).max())
assert np.allclose(manual.numpy(), out.numpy(), atol=1e-6), (
    "attention head by head does not reproduce the module's output: check split_heads, "
    "reshape to (batch, length, H, Dh), then swapaxes(1, 2)"
)

# %% [markdown]
# The module does the same without a Python loop: one call of `scaled_dot_product_attention` on
# (B, H, T, Dh) tensors, then the inverse of the split, (B, H, T, Dh) → swap → (B, T, H, Dh) →
# reshape → (B, T, D), which *is* the concatenation.

# %%
all_heads, all_weights = F.scaled_dot_product_attention(q_heads, k_heads, v_heads)  # (B, H, T, Dh)
# BEGIN SOLUTION
merged = all_heads.swapaxes(1, 2).reshape(B, T, D)  # (B, T, H, Dh) -> (B, T, D)
# END SOLUTION
assert np.allclose(merged.numpy(), concat.numpy(), atol=1e-6), (
    f"merged (shape {merged.shape}) should equal Concat(head_1, ..., head_h), (B, T, D) = "
    f"{(B, T, D)}: swap H and T back with swapaxes(1, 2) *before* reshaping to (B, T, D)"
)
assert np.allclose(mha.merge_heads(all_heads).numpy(), concat.numpy(), atol=1e-6)
assert np.allclose(mha.split_heads(Q).numpy(), q_heads.numpy()), (
    "your split_heads(Q) differs from the module's: reshape to (batch, length, H, Dh), then "
    "swapaxes(1, 2)"
)
print("vectorised heads == the loop over heads")

# %% [markdown]
# ## 5. `attention_weights`: (B, H, T, S)
#
# After every call the module keeps the weights of its last forward pass in `attention_weights`,
# detached from the graph, for plots and for stepping through. Head i's slice is the (T, T) matrix
# we computed in the loop.

# %%
print("attention_weights", mha.attention_weights.shape)
assert mha.attention_weights.shape == (B, H, T, T)
assert not mha.attention_weights.requires_grad
for i in range(H):
    assert np.allclose(mha.attention_weights.numpy()[:, i], head_weights[i].numpy(), atol=1e-6), (
        f"head {i}'s weights differ from the module's attention_weights[:, {i}]: split_heads "
        "must give head i the columns i·Dh:(i+1)·Dh (reshape, then swapaxes(1, 2))"
    )
print("head 0, sequence 0:\n", np.round(mha.attention_weights.numpy()[0, 0], 3))

# %% [markdown]
# Both heads of sequence 0 as heatmaps: the same four inputs, two different patterns, because
# each head compares the tokens through its own slice of W^Q and W^K.

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_attention(mha.attention_weights[0], [f"x{t}" for t in range(T)],
                                      "ch08_heads.png", title="self-attention, sequence 0"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# ## 6. One head is plain attention on the projections
#
# With h = 1 there is nothing to split: the module is `w_o` applied to Chapter 7's attention of
# the three projections, with d_k = d_model.

# %%
single = nn.MultiHeadAttention(D, n_heads=1)
q1, k1, v1 = single.w_q(x), single.w_k(x), single.w_v(x)  # (B, T, D) each
attended, _ = F.scaled_dot_product_attention(q1, k1, v1)  # (B, T, D)
assert np.allclose(single(x, x, x).numpy(), single.w_o(attended).numpy(), atol=1e-6)
print("one head == w_o(scaled_dot_product_attention(x W^Q, x W^K, x W^V))")

# %% [markdown]
# d_model must split evenly into heads; otherwise the module says so:

# %%
try:
    nn.MultiHeadAttention(10, 3)
except ValueError as error:
    print("ValueError:", error)
else:
    raise AssertionError("d_model=10 cannot be split into 3 heads")

# %% [markdown]
# ## 7. Self-attention and cross-attention
#
# The same module serves both kinds; only its inputs differ:
#
# - **self-attention**: query, key and value are one sequence x (B, T, D): every token looks at
#   the tokens of its own sequence. Weights (B, H, T, T).
# - **cross-attention** (the decoder looking at the encoder): the query is the decoder's state
#   (B, T, D), key and value are the encoder's output, the *memory* (B, S, D). Each of the T
#   target positions takes a weighted average over the S source positions. Weights (B, H, T, S),
#   output (B, T, D): the shape of the query.

# %%
memory = mt.randn(B, S, D)  # the encoder's output for a source of length S
cross = mha(x, memory, memory)  # query from the decoder, keys and values from the encoder
print("cross-attention output", cross.shape, " weights", mha.attention_weights.shape)
assert cross.shape == (B, T, D) and mha.attention_weights.shape == (B, H, T, S)

# %% [markdown]
# Padding in the source is masked as in Chapter 7: `padding_mask` gives (B, 1, 1, S), which
# broadcasts over heads and queries. Sequence 1 below has only 4 real source tokens.

# %%
src_ids = mt.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 0, 0]])  # (B, S), 0 = padding
cross_masked = mha(x, memory, memory, mask=F.padding_mask(src_ids, 0))
assert np.all(mha.attention_weights.numpy()[1, :, :, 4:] == 0)
assert np.allclose(mha.attention_weights.sum(axis=-1).numpy(), 1.0, atol=1e-6)

# %% [markdown]
# And since padded keys get zero weight, what the padding *contains* cannot matter:

# %%
garbage = memory.numpy().copy()
garbage[1, 4:] = 1e3  # overwrite the padded positions of sequence 1
again = mha(x, mt.tensor(garbage), mt.tensor(garbage), mask=F.padding_mask(src_ids, 0))
assert np.allclose(again.numpy(), cross_masked.numpy(), atol=1e-5)
print("padded memory positions have no influence")

# %% [markdown]
# ## 8. Counting parameters
#
# Four d_model × d_model matrices and four bias vectors of size d_model:
#
#     4 · d_model² + 4 · d_model
#
# independent of the number of heads: more heads means *narrower* heads, not more weights. For the
# paper's base model, d_model = 512: 4 · 512² + 4 · 512 = 1,050,624 parameters per attention
# layer. The work is the same too: the projections cost the same matmuls, and h heads of size
# d_model/h compute h score matrices of T × S dot products, each d_model/h long.

# %%
for d_model, n_heads in [(D, H), (D, 1), (512, 8), (512, 16)]:
    count = nn.MultiHeadAttention(d_model, n_heads).num_parameters()
    print(f"d_model {d_model:>3}, {n_heads:>2} heads: {count:>9,} parameters")
    assert count == 4 * d_model**2 + 4 * d_model
assert nn.MultiHeadAttention(D, H, bias=False).num_parameters() == 4 * D**2

# %% [markdown]
# ## 9. Gradient check
#
# Finally, every parameter and input of the module, with a padding mask on the keys, in float64.

# %%
mt.manual_seed(1)
small = nn.MultiHeadAttention(D, H).double()
query = mt.randn(B, 3, D)
kv = mt.randn(B, 4 if FAST else S, D)
key_ids = mt.tensor([[1] * kv.shape[1], [1] * (kv.shape[1] - 2) + [0, 0]])
report = mt.gradcheck_module(small, query, kv, kv, F.padding_mask(key_ids, 0), report=True)
print("checked:", ", ".join(report.shapes))
assert len(report.shapes) == 3 + 8  # query, key, value + 4 weights and 4 biases

# %% [markdown]
# ## Summary
#
# - The h per-head projections Wᵢ^Q (d_model × d_k) sit side by side in one d_model × d_model
#   matrix; one matmul projects for all heads, and head i owns columns i·d_k … (i+1)·d_k − 1.
# - Split: (B, T, D) → reshape (B, T, H, Dh) → swapaxes (B, H, T, Dh); attention then runs over
#   all (B, H) at once; merge (the Concat) is the inverse; W^O mixes the heads.
# - Our hand computation with the module's own weights reproduces `nn.MultiHeadAttention`.
# - `attention_weights` holds the last weights, (B, H, T, S), outside the graph.
# - Self-attention: query = key = value; cross-attention: query from the decoder, key and value
#   from the encoder's memory, weights (B, H, T, S).
# - Parameters: 4 · d_model² + 4 · d_model, whatever the number of heads.
#
# ## Exercises
#
# ```{exercise} Splitting the other way
# :label: ch08-split-other-way
#
# Split with `reshape(B, T, Dh, H)` instead of `(B, T, H, Dh)` (and adapt the swap). Does the
# module still compute a valid multi-head attention? Does it still match
# `nn.MultiHeadAttention`'s output for the same weights? Why?
# ```
#
# ````{solution} ch08-split-other-way
# :class: dropdown
#
# ```python
# def split_strided(t):
#     batch, length, _ = t.shape
#     return t.reshape(batch, length, Dh, H).permute(0, 3, 1, 2)  # (B, L, Dh, H) -> (B, H, L, Dh)
#
#
# def merge_strided(t):
#     batch, _, length, _ = t.shape
#     return t.permute(0, 2, 3, 1).reshape(batch, length, D)  # the exact inverse
#
#
# heads_s, _ = F.scaled_dot_product_attention(split_strided(Q), split_strided(K), split_strided(V))
# strided_out = merge_strided(heads_s) @ Wo + bo
# print(np.abs(strided_out.numpy() - out.numpy()).max())  # 0.33: not the module's output
# ```
#
# It is still a valid multi-head attention: head i now takes the *strided* columns i, i + H,
# i + 2H, … (head 0 gets columns 0, 2, 4, 6 here) instead of a contiguous block. That is just
# another way to assign the columns of W^Q, W^K, W^V to heads, the same for all three and undone
# by the matching merge, so a model trained with it learns equally well. But with the *same*
# weights it computes something else (largest difference 0.33), because each head dots
# different features of q and k. It equals `nn.MultiHeadAttention` whose W^Q, W^K, W^V columns
# (and biases) and W^O rows are permuted by `perm = [0, 2, 4, 6, 1, 3, 5, 7]`: loading those
# permuted weights into a fresh module reproduces `strided_out` to 1.2e-7. The split convention
# is part of the weight format: checkpoints from another library only load correctly with its
# convention.
# ````
#
# ```{exercise} An identity W^O
# :label: ch08-identity-wo
#
# Set `w_o`'s weight to the identity and its bias to zero. Show that each head's output then
# appears unchanged in its own D/H slice of the module's output.
# ```
#
# ````{solution} ch08-identity-wo
# :class: dropdown
#
# ```python
# mt.manual_seed(0)
# m = nn.MultiHeadAttention(D, H)
# m.w_o.weight.data[...] = np.eye(D, dtype=np.float32)
# m.w_o.bias.data[...] = 0.0
# y = m(x, x, x)
# q_h, k_h, v_h = (m.split_heads(layer(x)) for layer in (m.w_q, m.w_k, m.w_v))
# for i in range(H):
#     head_i, _ = F.scaled_dot_product_attention(q_h[:, i], k_h[:, i], v_h[:, i])  # (B, T, Dh)
#     print(i, np.abs(y.numpy()[..., i * Dh : (i + 1) * Dh] - head_i.numpy()).max())  # 0.0
# ```
#
# The difference is exactly 0.0 for both heads: the output *is* Concat(head₁, …, head_h). So
# W^O is the only place where heads mix; with the identity they stay side by side, each in its
# own slice.
# ````
#
# ```{exercise} Two identical heads
# :label: ch08-identical-heads
#
# Build an `nn.MultiHeadAttention(8, 2)` and make its two heads identical (copy head 0's
# columns of W^Q, W^K, W^V into head 1's). What do the two heads' `attention_weights` show?
# Why does random initialisation matter?
# ```
#
# ````{solution} ch08-identical-heads
# :class: dropdown
#
# ```python
# mt.manual_seed(0)
# m = nn.MultiHeadAttention(8, 2)
# for layer in (m.w_q, m.w_k, m.w_v):
#     layer.weight.data[:, 4:] = layer.weight.data[:, :4]
#     layer.bias.data[4:] = layer.bias.data[:4]
# m(x, x, x)
# print(np.array_equal(m.attention_weights.numpy()[:, 0], m.attention_weights.numpy()[:, 1]))
# ```
#
# The two heads' weights are identical (`True`): two heads with the same projections compute the
# same attention, and together they are worth one head. Here W^O still reads the two heads
# through different rows, so their gradients differ and training would pull them apart. If W^O's
# two row blocks are copied too (`m.w_o.weight.data[4:] = m.w_o.weight.data[:4]`), the
# gradients of the two heads' columns come out equal (checked with `np.allclose` after a
# backward): every update keeps them identical, forever. Random initialisation breaks this
# symmetry, so that the heads start different and can specialise in different relations.
# ````
#
# ```{exercise} Counting multiply-adds
# :label: ch08-count-flops
#
# Count the multiply-adds of one forward pass for d_model = 512, T = S = 100 with 1, 8 and 64
# heads, separately for the projections and for the attention itself.
# ```
#
# ```{solution} ch08-count-flops
# :class: dropdown
#
# Projections: Q, K, V and the output projection are each a (100 × 512) · (512 × 512) matmul,
# 4 · T · D² = 4 · 100 · 512² = **104,857,600** multiply-adds, whatever H is (biases add only
# 4 · T · D additions).
#
# Attention: each head computes T · S dot products of length D/H for QKᵀ and the same number of
# multiply-adds for weights · V, so H · T · S · (D/H) · 2 = 2 · T · S · D = **10,240,000**, also
# independent of H.
#
# | heads | projections | attention | softmax (exponentials) |
# |---|---|---|---|
# | 1 | 104,857,600 | 10,240,000 | 10,000 |
# | 8 | 104,857,600 | 10,240,000 | 80,000 |
# | 64 | 104,857,600 | 10,240,000 | 640,000 |
#
# Only the softmax grows with H (H · T · S exponentials), and it is small. At T = 100 the
# projections dominate tenfold; the attention part grows with T · S and overtakes them only
# when T ≈ 2 · D, i.e. sequences of about 1000 tokens. In practice many narrow heads are slower
# than their count suggests, because small matmuls use the hardware less well.
# ```
