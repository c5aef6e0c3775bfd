# %% setup
# Chapter 8's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn


def as_array(x):
    """A Tensor or array-like as a float64 NumPy array (answers may use either)."""
    return np.asarray(x.numpy() if isinstance(x, mt.Tensor) else x, dtype=np.float64)


# %% exercise ch08-split-other-way (3 points)
# split_strided(t, n_heads): (B, L, D) Tensor -> (B, H, L, D/H), splitting the last axis with
# reshape(B, L, D/H, H) (instead of (B, L, H, D/H)) and then reordering the axes, so that
# head i gets the strided features i, i + H, i + 2H, ...
# merge_strided(t): (B, H, L, D/H) -> (B, L, D), the exact inverse of split_strided.
# strided_perm(d_model, n_heads): a list of d_model ints, perm, such that an
# nn.MultiHeadAttention whose w_q, w_k, w_v weight columns and biases are permuted by perm
# (weight[:, perm], bias[perm]) and whose w_o weight rows are permuted by perm (weight[perm])
# computes, with the usual contiguous split, what the strided split computes with the original
# weights.
# matches_module: True or False: with the same weights, does attention with the strided split
# (and merge) give the same output as nn.MultiHeadAttention?
# BEGIN SOLUTION
def split_strided(t, n_heads):
    batch, length, d_model = t.shape
    t = t.reshape(batch, length, d_model // n_heads, n_heads)  # (B, L, Dh, H)
    return t.permute(0, 3, 1, 2)  # (B, H, L, Dh)


def merge_strided(t):
    batch, n_heads, length, d_head = t.shape
    return t.permute(0, 2, 3, 1).reshape(batch, length, n_heads * d_head)  # (B, L, Dh·H)


def strided_perm(d_model, n_heads):
    d_head = d_model // n_heads
    # contiguous column i·Dh + j must hold what the strided split gives head i: column j·H + i
    return [j * n_heads + i for i in range(n_heads) for j in range(d_head)]


matches_module = False  # each head dots other features of q and k
# END SOLUTION

# %% check ch08-split-other-way
B, L, D, H = 2, 5, 12, 3
t = mt.tensor(np.arange(B * L * D, dtype=np.float64).reshape(B, L, D))
split = split_strided(t, H)
assert tuple(split.shape) == (B, H, L, D // H), (
    f"split_strided of a (B, L, D) = {(B, L, D)} tensor into {H} heads has shape "
    f"{tuple(split.shape)}, not (B, H, L, D/H) = {(B, H, L, D // H)}: after the reshape to "
    "(B, L, D/H, H), the head axis (the last) must come second and D/H last")
for i in range(H):
    assert np.array_equal(as_array(split)[:, i], t.numpy()[..., i::H]), (
        f"head {i} of split_strided should hold the features {i}, {i + H}, {i + 2 * H}, ... of "
        "every token: reshape to (B, L, D/H, H), then move the axes so that the result is "
        "(B, H, L, D/H) (permute(0, 3, 1, 2))")
merged = merge_strided(split)
assert np.array_equal(as_array(merged), t.numpy()), (
    "merge_strided(split_strided(t, H)) should give t back exactly: undo the axis order "
    "first, then reshape to (B, L, D)")

mt.manual_seed(0)
mha = nn.MultiHeadAttention(D, H)
x = mt.randn(B, L, D)
with mt.no_grad():
    out = mha(x, x, x)
    q, k, v = (split_strided(layer(x), H) for layer in (mha.w_q, mha.w_k, mha.w_v))
    strided_out = mha.w_o(merge_strided(F.scaled_dot_product_attention(q, k, v)[0]))
difference = np.abs(strided_out.numpy() - out.numpy()).max()
assert matches_module == (difference < 1e-5), (
    f"matches_module is {matches_module!r}, but with the module's weights the strided split "
    f"and the module's outputs differ by up to {difference:.3g}")

perm = [int(p) for p in strided_perm(D, H)]
assert sorted(perm) == list(range(D)), f"strided_perm({D}, {H}) = {perm} is not a permutation"
permuted = nn.MultiHeadAttention(D, H)
for name in ("w_q", "w_k", "w_v"):
    getattr(permuted, name).weight.data[...] = getattr(mha, name).weight.data[:, perm]
    getattr(permuted, name).bias.data[...] = getattr(mha, name).bias.data[perm]
permuted.w_o.weight.data[...] = mha.w_o.weight.data[perm]
permuted.w_o.bias.data[...] = mha.w_o.bias.data
with mt.no_grad():
    gap = np.abs(permuted(x, x, x).numpy() - strided_out.numpy()).max()
assert gap < 1e-5, (
    f"a module with W^Q, W^K, W^V columns and W^O rows permuted by strided_perm({D}, {H}) = "
    f"{perm} differs from the strided attention by up to {gap:.3g}: position i·(D/H) + j of "
    "the contiguous split must hold the feature that the strided split gives head i as its "
    "j-th (check the direction of the mapping)")

# %% wrong ch08-split-other-way
def split_strided(t, n_heads):  # noqa: F811  (the chapter's swap kept: (B, H, D/H, L))
    batch, length, d_model = t.shape
    return t.reshape(batch, length, d_model // n_heads, n_heads).swapaxes(1, 3)

# %% wrong ch08-split-other-way
def strided_perm(d_model, n_heads):  # noqa: F811  (the mapping the other way round)
    d_head = d_model // n_heads
    return [(c % n_heads) * d_head + c // n_heads for c in range(d_model)]

# %% exercise ch08-identity-wo (2 points)
# head_outputs(mha, x): a list of mha.n_heads Tensors (B, T, d_k), head i's attention output
# for self-attention on x (B, T, d_model), computed from mha's projections w_q, w_k, w_v,
# mha.split_heads and F.scaled_dot_product_attention (before W^O).
# set_identity_wo(mha): sets mha.w_o's weight to the identity and its bias to zero, in place,
# and returns mha.
# BEGIN SOLUTION
def head_outputs(mha, x):
    q, k, v = (mha.split_heads(layer(x)) for layer in (mha.w_q, mha.w_k, mha.w_v))
    heads, _ = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, d_k)
    return [heads[:, i] for i in range(mha.n_heads)]


def set_identity_wo(mha):
    mha.w_o.weight.data[...] = np.eye(mha.d_model, dtype=mha.w_o.weight.data.dtype)
    mha.w_o.bias.data[...] = 0.0
    return mha
# END SOLUTION

# %% check ch08-identity-wo
mt.manual_seed(0)
D, H = 12, 3
mha = nn.MultiHeadAttention(D, H)
x = mt.randn(2, 5, D)
with mt.no_grad():
    heads = head_outputs(mha, x)
    assert len(heads) == H, f"head_outputs gives {len(heads)} heads, not n_heads = {H}"
    assert all(tuple(h.shape) == (2, 5, D // H) for h in heads), (
        f"each head's output should be (B, T, d_k) = (2, 5, {D // H}), not "
        f"{[tuple(h.shape) for h in heads]}")
    concat = np.concatenate([as_array(h) for h in heads], axis=-1)
    through_wo = concat @ mha.w_o.weight.numpy() + mha.w_o.bias.numpy()
    gap = np.abs(through_wo - mha(x, x, x).numpy()).max()
    assert gap < 1e-5, (
        f"Concat(head_outputs) W^O + b^O differs from the module's output by up to {gap:.3g} "
        "(with the module's own random W^O): compute each head's attention from the "
        "projections, split with mha.split_heads; do not take slices of the module's output")
    assert set_identity_wo(mha) is mha, "set_identity_wo should return the module it changed"
    out = mha(x, x, x).numpy()
    for i, head in enumerate(heads):
        gap = np.abs(out[..., i * (D // H):(i + 1) * (D // H)] - as_array(head)).max()
        assert gap < 1e-6, (
            f"with set_identity_wo, the module's output features {i * (D // H)}:"
            f"{(i + 1) * (D // H)} differ from head {i}'s output by up to {gap:.3g}: W^O must "
            "be the identity and its bias zero")

# %% wrong ch08-identity-wo
def set_identity_wo(mha):  # noqa: F811  (the bias left as it was)
    mha.w_o.weight.data[...] = np.eye(mha.d_model, dtype=np.float32)
    return mha

# %% wrong ch08-identity-wo
def head_outputs(mha, x):  # noqa: F811  (slices of the module's output, after W^O)
    out = mha(x, x, x)
    return [out[..., i * mha.d_k:(i + 1) * mha.d_k] for i in range(mha.n_heads)]

# %% exercise ch08-identical-heads (2 points)
# make_heads_identical(mha, copy_wo=False): for an nn.MultiHeadAttention with 2 heads, copy
# head 0's columns of w_q, w_k and w_v (weights and biases) into head 1's, in place; with
# copy_wo=True also copy the rows of w_o's weight that read head 0 into the rows that read
# head 1. Returns mha.
# Measure on a fresh nn.MultiHeadAttention(8, 2) with x = mt.randn(2, 5, 8), self-attention:
# weights_identical: True or False: after make_heads_identical(mha), are the two heads'
#     attention_weights equal?
# grads_identical: True or False: after one backward of (mha(x, x, x) * g).sum(), with a
#     random g = mt.randn(2, 5, 8), is the gradient of head 0's columns of w_q's weight equal
#     to that of head 1's columns (copy_wo=False)?
# grads_identical_wo_copied: the same question for a module made with copy_wo=True.
# BEGIN SOLUTION
def make_heads_identical(mha, copy_wo=False):
    d_k = mha.d_model // mha.n_heads
    for layer in (mha.w_q, mha.w_k, mha.w_v):
        layer.weight.data[:, d_k:] = layer.weight.data[:, :d_k]  # (in, out): heads are columns
        layer.bias.data[d_k:] = layer.bias.data[:d_k]
    if copy_wo:
        mha.w_o.weight.data[d_k:] = mha.w_o.weight.data[:d_k]  # W^O reads head i in rows
    return mha


def head_grads_equal(copy_wo):
    mt.manual_seed(0)
    x, g = mt.randn(2, 5, 8), mt.randn(2, 5, 8)
    mha = make_heads_identical(nn.MultiHeadAttention(8, 2), copy_wo)
    (mha(x, x, x) * g).sum().backward()
    grad = mha.w_q.weight.grad
    return bool(np.allclose(grad[:, :4], grad[:, 4:]))


mt.manual_seed(0)
x = mt.randn(2, 5, 8)
mha = make_heads_identical(nn.MultiHeadAttention(8, 2))
mha(x, x, x)
weights_identical = bool(np.array_equal(mha.attention_weights.numpy()[:, 0],
                                        mha.attention_weights.numpy()[:, 1]))
grads_identical = head_grads_equal(copy_wo=False)  # W^O reads the heads differently
grads_identical_wo_copied = head_grads_equal(copy_wo=True)  # symmetric forever
# END SOLUTION

# %% check ch08-identical-heads
def heads_after(copy_wo, seed):
    mt.manual_seed(seed)
    x, g = mt.randn(3, 4, 8), mt.randn(3, 4, 8)
    mha = nn.MultiHeadAttention(8, 2)
    assert make_heads_identical(mha, copy_wo) is mha, "make_heads_identical should return mha"
    (mha(x, x, x) * g).sum().backward()
    weights = mha.attention_weights.numpy()
    grad = mha.w_q.weight.grad
    return np.abs(weights[:, 0] - weights[:, 1]).max(), np.abs(grad[:, :4] - grad[:, 4:]).max()


weight_gap, grad_gap = heads_after(copy_wo=False, seed=5)
assert weight_gap < 1e-6, (
    f"after make_heads_identical the two heads' attention weights differ by up to "
    f"{weight_gap:.3g}: copy head 0's COLUMNS 0:4 of each (in, out) weight into columns 4:8, "
    "and the biases' entries 0:4 into 4:8")
assert weights_identical == (weight_gap < 1e-6), (
    f"weights_identical is {weights_identical!r}, but the two heads' attention weights differ "
    f"by {weight_gap:.3g} after make_heads_identical")
assert grads_identical == (grad_gap < 1e-6), (
    f"grads_identical is {grads_identical!r}, but with only W^Q, W^K, W^V copied the gradients "
    f"of the two heads' w_q columns differ by up to {grad_gap:.3g}: W^O reads the two heads "
    "through different rows")
weight_gap, grad_gap = heads_after(copy_wo=True, seed=5)
assert grad_gap < 1e-6, (
    f"with copy_wo=True the gradients of the two heads' w_q columns still differ by up to "
    f"{grad_gap:.3g}: copy W^O's ROWS 0:4 (which read head 0) into rows 4:8")
assert grads_identical_wo_copied == (grad_gap < 1e-6), (
    f"grads_identical_wo_copied is {grads_identical_wo_copied!r}, but with W^O's rows copied "
    f"too the gradients of the two heads' w_q columns differ by {grad_gap:.3g}")

# %% wrong ch08-identical-heads
def make_heads_identical(mha, copy_wo=False):  # noqa: F811  (rows copied: PyTorch's layout)
    for layer in (mha.w_q, mha.w_k, mha.w_v):
        layer.weight.data[4:] = layer.weight.data[:4]
        layer.bias.data[4:] = layer.bias.data[:4]
    if copy_wo:
        mha.w_o.weight.data[:, 4:] = mha.w_o.weight.data[:, :4]
    return mha

# %% wrong ch08-identical-heads
grads_identical = True  # "identical heads get identical updates", W^O overlooked

# %% exercise ch08-count-flops (2 points)
# Count the multiply-adds of the matrix products of one forward pass of multi-head attention
# (biases, scaling and the softmax not included), for T = n_queries queries and S = n_keys
# keys/values:
# projection_macs(d_model, n_queries, n_keys): the four projections: Q and the output
#     projection act on T rows, K and V on S rows.
# attention_macs(d_model, n_heads, n_queries, n_keys): QKᵀ and weights · V, over all heads.
# softmax_exps(n_heads, n_queries, n_keys): the number of exponentials the softmax computes.
# crossover_length: the smallest T for which, in self-attention (S = T) with d_model = 512,
#     attention_macs is at least projection_macs (an int).
# BEGIN SOLUTION
def projection_macs(d_model, n_queries, n_keys):
    # each is a (rows × d_model) · (d_model × d_model) product
    return 2 * n_queries * d_model**2 + 2 * n_keys * d_model**2


def attention_macs(d_model, n_heads, n_queries, n_keys):
    d_k = d_model // n_heads
    scores = n_queries * n_keys * d_k  # QKᵀ of one head: T·S dot products of length d_k
    mixing = n_queries * n_keys * d_k  # weights · V of one head
    return n_heads * (scores + mixing)  # = 2 T S d_model, whatever n_heads


def softmax_exps(n_heads, n_queries, n_keys):
    return n_heads * n_queries * n_keys


crossover_length = 2 * 512  # 4 T d² = 2 T² d  <=>  T = 2d
# END SOLUTION

# %% check ch08-count-flops
macs = projection_macs(512, 100, 100)
assert macs == 4 * 100 * 512**2, (
    f"projection_macs(512, 100, 100) is {macs:,}: each of the four projections is a "
    "(100 × 512) · (512 × 512) matrix product")
macs = projection_macs(64, 10, 30)
assert macs == 2 * 10 * 64**2 + 2 * 30 * 64**2, (
    f"projection_macs(64, T=10, S=30) is {macs:,}: Q and the output projection have T rows, "
    "K and V have S rows")
counts = {h: attention_macs(512, h, 100, 100) for h in (1, 8, 64)}
assert len(set(counts.values())) == 1, (
    f"attention_macs(512, H, 100, 100) for H = 1, 8, 64 gives {counts}: H heads of width "
    "d_model / H cost the same as one head of width d_model")
assert counts[8] == 2 * 100 * 100 * 512, (
    f"attention_macs(512, 8, 100, 100) is {counts[8]:,}: each head computes T·S dot products of "
    "length d_model/H for QKᵀ, and as many multiply-adds again for weights · V")
assert attention_macs(64, 4, 10, 30) == 2 * 10 * 30 * 64, (
    f"attention_macs(64, 4, T=10, S=30) is {attention_macs(64, 4, 10, 30):,}: the scores are "
    "T × S per head")
exps = [softmax_exps(h, 100, 100) for h in (1, 8, 64)]
assert exps == [h * 100 * 100 for h in (1, 8, 64)], (
    f"softmax_exps(H, 100, 100) for H = 1, 8, 64 gives {exps}: one exponential per score, and "
    "each head has its own T × S scores")
T = int(crossover_length)
at = attention_macs(512, 8, T, T) >= projection_macs(512, T, T)
before = attention_macs(512, 8, T - 1, T - 1) >= projection_macs(512, T - 1, T - 1)
assert at and not before, (
    f"crossover_length is {crossover_length!r}, but it should be the smallest T with "
    "attention_macs(512, 8, T, T) >= projection_macs(512, T, T): solve 4·T·d² = 2·T²·d for T")

# %% wrong ch08-count-flops
def attention_macs(d_model, n_heads, n_queries, n_keys):  # noqa: F811  (heads d_model wide)
    return n_heads * 2 * n_queries * n_keys * d_model

# %% wrong ch08-count-flops
def projection_macs(d_model, n_queries, n_keys):  # noqa: F811  (W^O forgotten)
    return n_queries * d_model**2 + 2 * n_keys * d_model**2
