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
# # Chapter 10 — The encoder, the decoder and their masks
#
# > The encoder maps an input sequence of symbol representations (x₁, …, xₙ) to a sequence of
# > continuous representations z = (z₁, …, zₙ). Given z, the decoder then generates an output
# > sequence (y₁, …, yₘ) of symbols one element at a time.
# > — *Attention Is All You Need*, section 3
#
# We now have every part: embeddings, positional codes (Chapter 9), multi-head attention
# (Chapter 8), the feed-forward network, LayerNorm and dropout (Chapter 6). This chapter assembles
# them into encoder and decoder layers, stacks those into the full encoder-decoder `Transformer`,
# and tests the two properties its masks promise: the decoder never sees the future, and padding
# changes nothing. We count the parameters of the paper's base model, train a tiny Transformer
# to copy its input, and finally count the memory training keeps for backward, and how to trade
# it for compute.
#
# **Learning objectives.** After this chapter you can
#
# 1. write the sub-layer pattern of an encoder layer and a decoder layer, post-LN (the paper) and
#    pre-LN, and name what `norm1`, `norm2` and `norm3` follow;
# 2. trace the shapes from token ids (B, S), (B, T) to logits (B, T, V);
# 3. show that the decoder is causal and that masked padding has no effect;
# 4. count the 63,119,496 parameters of the base model with shared embeddings;
# 5. train a Transformer on the copy task and decode greedily;
# 6. count the activation memory a layer keeps for backward from its shapes, and trade it for
#    compute with recomputation.

# %%
import importlib.util
import os

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer training steps when set
STEPS = 70 if FAST else 120
D, H, D_FF = 16, 2, 32  # a small d_model, number of heads, d_ff for the demonstrations
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. The encoder layer: two sub-layers, each with a residual and a LayerNorm
#
# > We employ a residual connection around each of the two sub-layers, followed by layer
# > normalization. That is, the output of each sub-layer is LayerNorm(x + Sublayer(x)).
#
# An encoder layer is self-attention, then the feed-forward network. The paper puts the LayerNorm
# *after* the residual sum (**post-LN**). Most later models put it *before* the sub-layer, on the
# branch only (**pre-LN**), which trains more stably in deep stacks (Xiong et al. 2020):
#
#     post-LN (norm_first=False):  x = norm1(x + SelfAttn(x));   x = norm2(x + FFN(x))
#     pre-LN  (norm_first=True):   x = x + SelfAttn(norm1(x));   x = x + FFN(norm2(x))
#
# (Dropout sits on each sub-layer's output; we use dropout=0 to compare numbers exactly.) We
# recompute one layer of each kind from its own sub-modules.

# %%
mt.manual_seed(0)
x = mt.randn(2, 5, D)  # (B, S, D)

post = nn.EncoderLayer(D, H, D_FF, dropout=0.0)
h = post.norm1(x + post.self_attn(x, x, x))
by_hand = post.norm2(h + post.ff(h))
assert np.allclose(post(x).numpy(), by_hand.numpy(), atol=1e-6)

pre = nn.EncoderLayer(D, H, D_FF, dropout=0.0, norm_first=True)
n1 = pre.norm1(x)
h = x + pre.self_attn(n1, n1, n1)
by_hand = h + pre.ff(pre.norm2(h))
assert np.allclose(pre(x).numpy(), by_hand.numpy(), atol=1e-6)
print("EncoderLayer, post-LN and pre-LN, recomputed from its sub-modules")

# %% [markdown]
# The difference shows in the output: a post-LN layer ends in a LayerNorm, so every position
# leaves with mean 0 and variance 1 whatever came in; a pre-LN layer ends in a residual sum and
# passes the scale of its input straight through. Feed both an input ten times too large:

# %%
loud = x * 10.0
post_std = post(loud).numpy().std(axis=-1).mean()
pre_std = pre(loud).numpy().std(axis=-1).mean()
print(f"input std {loud.numpy().std(axis=-1).mean():.2f}: post-LN output std {post_std:.3f}, "
      f"pre-LN output std {pre_std:.2f}")
assert np.allclose(post(loud).numpy().std(axis=-1), 1.0, atol=1e-3) and pre_std > 5.0

# %% [markdown]
# That is why a pre-LN stack needs one more LayerNorm after its last layer (`final_norm`, on by
# default in a pre-LN `Transformer`), while the paper's post-LN model has none.

# %%
assert nn.Transformer(10, 10, D, H, 1, 1, D_FF, norm_first=True).encoder.norm is not None
assert nn.Transformer(10, 10, D, H, 1, 1, D_FF).encoder.norm is None  # the paper's model

# %% [markdown]
# ## 2. The decoder layer: three sub-layers
#
# A decoder layer adds a sub-layer in the middle: **cross-attention**, whose queries come from the
# decoder and whose keys and values come from the encoder's output, the *memory* (Chapter 8). Its
# self-attention is masked causally. The norms are numbered in order: `norm1` follows
# self-attention, `norm2` cross-attention, `norm3` the feed-forward network (PyTorch's order):
#
#     x = norm1(x + SelfAttn(x, causal mask))
#     x = norm2(x + CrossAttn(x, memory, memory mask))
#     x = norm3(x + FFN(x))

# %%
dec = nn.DecoderLayer(D, H, D_FF, dropout=0.0)
print([name for name, _ in dec.named_modules() if name and "." not in name])
y = mt.randn(2, 4, D)  # decoder input (B, T, D)
memory = post(x)  # encoder output (B, S, D)
causal = F.causal_mask(4)

h = dec.norm1(y + dec.self_attn(y, y, y, causal))
h = dec.norm2(h + dec.cross_attn(h, memory, memory))
by_hand = dec.norm3(h + dec.ff(h))
assert np.allclose(dec(y, memory, tgt_mask=causal).numpy(), by_hand.numpy(), atol=1e-6)
assert dec.cross_attn.attention_weights.shape == (2, H, 4, 5)  # (B, H, T, S)
print("DecoderLayer recomputed: self-attention -> norm1, cross -> norm2, FFN -> norm3")

# %% [markdown]
# Both layers pass `mt.gradcheck_module` with their masks, every parameter included:

# %%
mt.manual_seed(1)
d_check = 4 if FAST else 8  # a tiny d_model: the checker runs two forwards per weight
small_dec = nn.DecoderLayer(d_check, 2, 2 * d_check, dropout=0.0).double()
tgt_x, mem_x = mt.randn(1, 3, d_check), mt.randn(1, 4, d_check)
mem_mask = F.padding_mask(mt.tensor([[1, 1, 1, 0]]), 0)
assert mt.gradcheck_module(small_dec, tgt_x, mem_x, F.causal_mask(3), mem_mask)
small_enc = nn.EncoderLayer(d_check, 2, 2 * d_check, dropout=0.0, norm_first=True).double()
assert mt.gradcheck_module(small_enc, mem_x, mem_mask)
print("EncoderLayer and DecoderLayer pass gradcheck_module")

# %% [markdown]
# ## 3. The whole Transformer: from ids to logits
#
# `nn.Transformer(src_vocab, tgt_vocab, d_model, n_heads, n_encoder_layers, n_decoder_layers,
# d_ff, ...)` wires it together:
#
#     src (B, S) ids ─ embed · √d_model + PE ─▶ (B, S, D) ─ encoder ─▶ memory (B, S, D)
#     tgt (B, T) ids ─ embed · √d_model + PE ─▶ (B, T, D) ─ decoder(·, memory) ─▶ (B, T, D)
#                                                   ─ output projection ─▶ logits (B, T, V)
#
# `forward(src, tgt)` does it all; `encode`, `decode` and `project` expose the three stages.
# `tgt_mask=None` means causal, and `memory_mask=None` reuses `src_mask`.

# %%
V_SRC, V_TGT, PAD, BOS = 13, 11, 0, 1
mt.manual_seed(2)
model = nn.Transformer(V_SRC, V_TGT, d_model=D, n_heads=H, n_encoder_layers=2,
                       n_decoder_layers=2, d_ff=D_FF, dropout=0.0, max_len=32).eval()
src = mt.tensor([[5, 6, 7, 8, 9, 10], [4, 3, 2, 12, PAD, PAD]])  # (B=2, S=6)
tgt = mt.tensor([[BOS, 2, 3, 4, 5], [BOS, 6, 7, PAD, PAD]])  # (B=2, T=5)
src_mask = F.padding_mask(src, PAD)  # (B, 1, 1, S)

memory = model.encode(src, src_mask)  # (B, S, D)
hidden = model.decode(tgt, memory, memory_mask=src_mask)  # (B, T, D), causal by default
logits = model.project(hidden)  # (B, T, V_TGT)
print("src", src.shape, "-> memory", memory.shape)
print("tgt", tgt.shape, "-> hidden", hidden.shape, "-> logits", logits.shape)
assert memory.shape == (2, 6, D) and hidden.shape == (2, 5, D) and logits.shape == (2, 5, V_TGT)
assert np.allclose(model(src, tgt, src_mask=src_mask).numpy(), logits.numpy(), atol=1e-6)

# %% [markdown]
# Parameter names follow the attribute paths of Chapter 6, down to each projection:

# %%
names = [name for name, _ in model.named_parameters()]
print(len(names), "parameter tensors, e.g.", names[2], "and", names[-3])
assert "encoder.layers.0.self_attn.w_q.weight" in names
assert "decoder.layers.1.cross_attn.w_o.bias" in names
assert "decoder.layers.0.norm3.weight" in names

# %% [markdown]
# ## 4. The decoder cannot see the future
#
# During training the decoder reads the whole target at once ("teacher forcing"): position t's
# input is the correct token t, and its output predicts token t + 1. That is only honest if
# position t cannot look at tokens after t; otherwise it could simply copy the answer. The causal
# mask in every decoder self-attention guarantees it. Test: change the target token at position 3;
# the logits at positions 0..2 must not move.

# %%
changed = tgt.numpy().copy()
changed[0, 3] = 9
logits_changed = model(src, mt.tensor(changed), src_mask=src_mask).numpy()
before, after = logits.numpy()[0, :3], logits_changed[0, :3]
print("largest change at positions 0..2:", np.abs(before - after).max())
print("largest change at positions 3..4:", np.abs(logits.numpy()[0, 3:] - logits_changed[0, 3:])
      .max())
assert np.array_equal(before, after)
assert not np.allclose(logits.numpy()[0, 3:], logits_changed[0, 3:])

# %% [markdown]
# `tgt_mask=None` builds that mask for us. Written by hand, it is the lower triangle of a (T, T)
# boolean matrix: query t may attend to keys 0..t. Passed explicitly, it gives the same logits.

# %%
# BEGIN SOLUTION
lower_triangle = mt.tensor(np.tril(np.ones((5, 5), dtype=bool)))  # (T, T): True where key <= query
# END SOLUTION
assert np.array_equal(lower_triangle.numpy(), F.causal_mask(5).numpy()), (
    "lower_triangle should be True on and below the diagonal (key ≤ query may attend): check "
    "the orientation (tril, not triu) and the size (5, 5); got "
    f"{np.asarray(lower_triangle.numpy()).astype(int).tolist()}"
)
explicit = model(src, tgt, src_mask=src_mask, tgt_mask=lower_triangle).numpy()
assert np.allclose(explicit, logits.numpy(), atol=1e-6), (
    "with tgt_mask=lower_triangle the logits should equal the default causal ones: "
    "lower_triangle must be a (5, 5) bool mask, True where key ≤ query"
)

# %% [markdown]
# Without the causal mask (an all-True `tgt_mask`), the same change leaks backwards:

# %%
see_all = mt.tensor(np.ones((5, 5), dtype=bool))
leaky = model(src, tgt, src_mask=src_mask, tgt_mask=see_all).numpy()
leaky_changed = model(src, mt.tensor(changed), src_mask=src_mask, tgt_mask=see_all).numpy()
assert not np.allclose(leaky[0, :3], leaky_changed[0, :3])
print("with an all-True tgt_mask, earlier logits do change: the future leaks")

# %% [markdown]
# ## 5. Padding changes nothing
#
# The second source sentence has 4 real tokens and 2 pads. With `src_mask =
# padding_mask(src, PAD)` no encoder query and no decoder cross-attention query attends to the
# padded positions, so the model's answer should be exactly what it gives for the unpadded
# sentence on its own. (Padding goes at the end, so the real tokens keep their positions.)

# %%
alone = mt.tensor([[4, 3, 2, 12]])  # sentence 1 without its padding, (1, 4)
logits_alone = model(alone, tgt[1:]).numpy()  # no padding: no mask needed
logits_padded = logits.numpy()[1:]
print("padded in a batch vs alone, largest difference:", np.abs(logits_alone - logits_padded).max())
assert np.allclose(logits_alone, logits_padded, atol=1e-5)

# %% [markdown]
# What the pad positions contain cannot matter either, but only because of the mask:

# %%
other_pads = src.numpy().copy()
other_pads[1, 4:] = [11, 12]  # different "padding" tokens, still masked out
masked = model(mt.tensor(other_pads), tgt, src_mask=src_mask).numpy()
unmasked = model(mt.tensor(other_pads), tgt).numpy()
assert np.allclose(masked, logits.numpy(), atol=1e-6)
assert not np.allclose(unmasked[1], logits.numpy()[1], atol=1e-3)
print("masked padding is invisible; unmasked, it changes the output")

# %% [markdown]
# Padding in the *target* is handled by the loss instead: the logits at padded target positions
# are computed (causality keeps them from affecting earlier ones), and `cross_entropy(...,
# ignore_index=PAD)` leaves them out (Chapter 5).
#
# ## 6. Counting the base model's parameters
#
# The paper's base model: d_model = 512, h = 8, d_ff = 2048, N = 6 layers in each stack, and a
# shared source-target vocabulary of about 37,000 byte-pair tokens, with one embedding table for
# source, target and the output projection (section 3.4). Per layer:
#
# | part                                  | parameters                         |
# |---------------------------------------|------------------------------------|
# | multi-head attention                  | 4·512² + 4·512 = 1,050,624          |
# | feed-forward                          | 2·512·2048 + 2048 + 512 = 2,099,712 |
# | LayerNorm                             | 2·512 = 1,024                       |
# | encoder layer: attn + FFN + 2 norms   | 3,152,384                           |
# | decoder layer: 2 attn + FFN + 3 norms | 4,204,032                           |
#
# plus the shared embedding 37,000 · 512 = 18,944,000 and an output bias of 37,000. The
# sinusoidal codes have no parameters.

# %%
d, ff, vocab = 512, 2048, 37000
attention = 4 * d * d + 4 * d
feed_forward = 2 * d * ff + ff + d
norm = 2 * d
encoder_layer = attention + feed_forward + 2 * norm
decoder_layer = 2 * attention + feed_forward + 3 * norm
expected = 6 * encoder_layer + 6 * decoder_layer + vocab * d + vocab
print(f"by hand: {expected:,}")

base = nn.Transformer(37000, 37000, share_embeddings=True, tie_output=True)
print(f"nn.Transformer(37000, 37000, share_embeddings=True, tie_output=True): "
      f"{base.num_parameters():,}")
assert expected == base.num_parameters() == 63_119_496
del base  # 250 MB of float32 weights

# %% [markdown]
# (The paper's Table 3 rounds its base model to 65 million; the exact figure depends on details it
# leaves open, such as the vocabulary size and the biases.) Even shared, the one embedding table
# holds 18.9 M parameters, almost a third of the model; without sharing there would be three.
#
# ## 7. Training a tiny Transformer to copy
#
# The simplest sequence-to-sequence task: the output is the input. It needs everything we built:
# the encoder must store each token with its position, the decoder must find the next one by
# cross-attention, and the causal mask keeps it honest. Data: 32 random sequences of 6 symbols
# from {2, …, 11}; the decoder input is the target shifted right behind `<bos>` (id 1).
#
#     source:         7  3  9  2  5  8
#     decoder input: <bos> 7  3  9  2  5        (teacher forcing)
#     target:         7  3  9  2  5  8

# %%
VOCAB, LENGTH, BATCH = 12, 6, 32
rng = np.random.default_rng(0)
sources = rng.integers(2, VOCAB, (BATCH, LENGTH))
decoder_inputs = np.concatenate([np.full((BATCH, 1), BOS), sources[:, :-1]], axis=1)
src_ids, tgt_in, tgt_out = mt.tensor(sources), mt.tensor(decoder_inputs), mt.tensor(sources)

mt.manual_seed(3)
copier = nn.Transformer(VOCAB, VOCAB, d_model=32, n_heads=4, n_encoder_layers=2,
                        n_decoder_layers=2, d_ff=64, dropout=0.0, max_len=16)
optimizer = mt.optim.Adam(copier.parameters(), lr=3e-3)
losses = []
for step in range(STEPS):
    optimizer.zero_grad()
    logits = copier(src_ids, tgt_in)  # (B, T, V)
    loss = F.cross_entropy(logits, tgt_out)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 10 == 0 or step == STEPS - 1:
        accuracy = (logits.numpy().argmax(axis=-1) == sources).mean()
        print(f"step {step:>3}: loss {loss.item():.4f}  token accuracy {accuracy:.1%}")
assert loss.item() < 0.1 and accuracy > 0.98

# %% [markdown]
# The loss at every step, on a log scale: look at the slow first stretch, then the straight
# descent, where the loss shrinks by about the same factor every step.

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_curves({"training loss": losses}, "ch10_copy_loss.png",
                                   ylabel="cross-entropy", logy=True, title="copy task"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# Teacher forcing feeds the right answers in. At inference there are none: the decoder must read
# its *own* previous outputs. Greedy decoding starts from `<bos>`, takes the most likely next
# token, appends it, and repeats; thanks to causality, each step's logits at the new position are
# exactly what training optimised. (`minitransformer.decoding.greedy` does this, faster, with a
# key/value cache.)

# %%
copier.eval()
with mt.no_grad():
    memory = copier.encode(src_ids)  # encode once
    generated = np.full((BATCH, 1), BOS)
    for _ in range(LENGTH):
        step_logits = copier.project(copier.decode(mt.tensor(generated), memory))  # (B, t, V)
        # BEGIN SOLUTION
        next_ids = step_logits.numpy()[:, -1].argmax(axis=-1)  # the last position's prediction
        generated = np.concatenate([generated, next_ids[:, None]], axis=1)
        # END SOLUTION
print("source:   ", sources[0].tolist())
print("generated:", generated[0, 1:].tolist())
assert (generated[:, 1:] == sources).mean() > 0.95, (
    f"greedy decoding should reproduce > 95% of the source tokens, got "
    f"{np.mean(generated[:, 1:] == sources):.1%} (generated has shape {generated.shape}): take "
    "the argmax over the vocabulary of the *last* position, step_logits[:, -1], and append it "
    "to generated as a new column"
)

# %% [markdown]
# ## 8. Memory: what training keeps for backward, and recomputation
#
# Backward needs the values forward computed: ReLU's derivative needs x, a matmul's needs both
# factors, softmax's needs its output. So a training step keeps, until backward has passed, what
# every op saved. For one encoder layer (post-LN, ReLU, dropout p > 0) of a batch of B
# sequences of T tokens, d = d_model, H heads, read the ops in order and count what each keeps:
#
# | op | keeps | size |
# |---|---|---|
# | W^Q, W^K, W^V (Linear) | the layer's input x, once for the three | B·T·d |
# | QKᵀ (matmul) | Q and K | 2·B·T·d |
# | softmax | its output, the weights | B·H·T² |
# | dropout on the weights | the mask | B·H·T² |
# | weights·V (matmul) | the dropped weights and V | B·H·T² + B·T·d |
# | W^O (Linear) | the concatenated heads | B·T·d |
# | dropout, then LayerNorm (norm1) | the mask; x̂ (and 1/σ per row) | 2·B·T·d |
# | W₁ then ReLU (one op) | its input (norm1's output) and output | B·T·d + B·T·d_ff |
# | dropout inside the FFN, W₂ | the mask; W₂'s input | 2·B·T·d_ff |
# | dropout, then LayerNorm (norm2) | the mask; x̂ | 2·B·T·d |
#
# In all, per layer and in float32 (4 bytes a number),
#
#     M_layer = 4 · (10·B·T·d + 3·B·T·d_ff + 3·B·H·T²)  bytes.
#
# The B·H·T² terms grow with the square of the sequence length: at T = 512 they dominate
# everything else. And the stack multiplies all of it by the number of layers N.
# `mt.autograd.saved_bytes(output)` walks the graph and adds up what it keeps; here is the formula
# beside the measurement.

# %%
def layer_formula(batch, length, d, heads, d_ff):
    """Bytes one post-LN encoder layer keeps for backward (float32, dropout on):
    4 · (10·B·T·d + 3·B·T·d_ff + 3·B·H·T²) with B = batch, T = length, H = heads."""
    return 4 * (10 * batch * length * d + 3 * batch * length * d_ff
                + 3 * batch * heads * length * length)


B, T, N = 8, 32, 4
mt.manual_seed(0)
stack = nn.Encoder(N, d_model=32, n_heads=4, d_ff=128, dropout=0.1)  # post-LN, ReLU
x = mt.randn(B, T, 32, requires_grad=True)
out = stack(x)
kept = mt.autograd.saved_bytes(out)
predicted = N * layer_formula(B, T, 32, 4, 128)
print(f"{N} layers keep {kept / 2**20:.2f} MiB; the formula says {predicted / 2**20:.2f} MiB")
for name, size in sorted(mt.autograd.saved_bytes(out, by_function=True).items(),
                         key=lambda item: -item[1]):
    print(f"  {name:<20} {size / 2**20:6.2f} MiB")
assert abs(kept - predicted) / predicted < 0.02  # x itself is not counted: it exists anyway

# %% [markdown]
# **Recomputation** (Chen et al. 2016, "Training deep nets with sublinear memory cost") trades
# compute for that memory. A layer run through `nn.recompute(layer, x)` keeps only its input x:
# its forward runs without recording a graph, so everything inside is freed at once, and its
# backward runs the layer *again*, recording this time, and backpropagates through that fresh
# graph straight away. Each layer now keeps B·T·d numbers instead of M_layer / 4, and backward
# does one more forward per layer: about a third more work, since a backward costs about two
# forwards. Dropout must drop the same units both times, or the gradient would be another
# function's: the forward notes where the random generator stood and the backward draws again
# from there. `nn.Encoder`, `nn.Decoder`, `nn.TextEncoder`, `nn.Transformer` and the models take
# `recompute=True`; the training commands take `--set recompute=true`.

# %%
mt.manual_seed(0)
lean = nn.Encoder(N, d_model=32, n_heads=4, d_ff=128, dropout=0.1, recompute=True)
lean.load_state_dict(stack.state_dict())
grads, kept = {}, {}
for name, model in (("keeps everything", stack), ("recomputes", lean)):
    model.zero_grad()
    mt.manual_seed(1)  # the same dropout masks for both
    x = mt.randn(B, T, 32, requires_grad=True)
    out = model(x)
    kept[name] = mt.autograd.saved_bytes(out)
    print(f"{name:<17} keeps {kept[name] / 2**20:5.2f} MiB")
    (out * out).sum().backward()
    grads[name] = [p.grad for p in model.parameters()] + [x.grad]
# one (B, T, d) input per layer, but the first layer's input is x, which exists anyway
assert kept["recomputes"] == (N - 1) * B * T * 32 * 4
assert all(np.allclose(a, b, rtol=1e-4, atol=1e-6)
           for a, b in zip(grads["keeps everything"], grads["recomputes"]))

# %% [markdown]
# Memory against depth: without recomputation every layer adds M_layer; with it, every layer adds
# one B·T·d input (and backward holds one layer's activations at a time, while it re-runs it).

# %%
depths = list(range(1, 9))
measured = {"keeps everything": [], "recomputes": []}
for depth in depths:
    for name, flag in (("keeps everything", False), ("recomputes", True)):
        mt.manual_seed(0)
        model = nn.Encoder(depth, d_model=32, n_heads=4, d_ff=128, dropout=0.1, recompute=flag)
        measured[name].append(mt.autograd.saved_bytes(model(mt.randn(B, T, 32))) / 2**20)
formula = [depth * layer_formula(B, T, 32, 4, 128) / 2**20 for depth in depths]
assert measured["recomputes"][-1] < measured["keeps everything"][-1] / 10
if HAS_MATPLOTLIB:
    curves = {f"measured, {name}": (depths, values) for name, values in measured.items()}
    curves["N · M_layer (the formula)"] = (depths, formula)
    mt.viz.show(mt.viz.plot_curves(curves, "ch10_recompute_memory.png", xlabel="layers N",
                                   ylabel="kept for backward (MiB)", marker="o",
                                   dashed=["N · M_layer (the formula)"],
                                   title=f"B={B}, T={T}, d=32, H=4, d_ff=128, dropout 0.1"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# At a real size the trade is the same. On the benchmark language model with B = 32, T = 128,
# d = 256, H = 8, d_ff = 1024 and 8 layers, the formula gives 136 MiB per layer and the graph
# keeps 1,174 MiB (with the output head's 78 MiB); with recomputation it keeps 118 MiB, the
# highest memory of a training step above its weights falls from 1,494 to 461 MiB (69% lower),
# and a step takes 1.26 times as long (`benchmarks/recompute.py`, measured on a 2-core
# machine; see the performance page of the docs).

# %% [markdown]
# ## Summary
#
# - Every sub-layer is wrapped in a residual connection and a LayerNorm: post-LN (the paper)
#   normalises after the sum, pre-LN before the sub-layer, and then needs a final LayerNorm.
# - Encoder layer: self-attention → `norm1`, FFN → `norm2`. Decoder layer: causal self-attention
#   → `norm1`, cross-attention over the memory → `norm2`, FFN → `norm3`.
# - `Transformer(src, tgt)`: ids → embeddings · √d_model + PE → encoder (B, S, D) and decoder
#   (B, T, D) → logits (B, T, V); `tgt_mask=None` is causal, `memory_mask=None` reuses `src_mask`.
# - Causality: a change at target position t changes no logit before t. Padding: with
#   `padding_mask`, a padded sentence gives the same logits as the sentence alone.
# - The base model with shared embeddings and a tied output has 63,119,496 parameters.
# - A tiny Transformer learns to copy in a few dozen Adam steps and decodes greedily.
# - Training keeps about 4·(10·B·T·d + 3·B·T·d_ff + 3·B·H·T²) bytes per layer for backward;
#   `recompute=True` keeps one B·T·d input per layer instead and runs each layer again in
#   backward: the same gradients, for one more forward per layer.
#
# ## Exercises
#
# ```{exercise} The base model without sharing
# :label: ch10-unshared-count
#
# Compute the base model's parameter count without `share_embeddings` and `tie_output`, first
# by hand, then with `nn.Transformer(37000, 37000)`.
# ```
#
# ````{solution} ch10-unshared-count
# :class: dropdown
#
# Unshared, there are three 37,000 × 512 tables (source embedding, target embedding, output
# projection), two more than in section 6; the output bias of 37,000 is there either way:
#
#     6 · 3,152,384 + 6 · 4,204,032 + 3 · 18,944,000 + 37,000 = 101,007,496
#
# ```python
# by_hand = 6 * encoder_layer + 6 * decoder_layer + 3 * vocab * d + vocab
# unshared = nn.Transformer(37000, 37000)
# print(by_hand, unshared.num_parameters())  # 101007496 101007496
# del unshared
# ```
#
# Sharing saves 2 · 18,944,000 = 37,888,000 parameters, 38% of the unshared model.
# ````
#
# ```{exercise} A mask that peeks one step ahead
# :label: ch10-peek-mask
#
# Replace the causal mask by one shifted by one, `mt.tensor(np.tril(np.ones((T, T), bool), 1))`
# (each position may also see the *next* token). Train the copy task again: how fast does the
# teacher-forced loss fall, and how well does greedy decoding do? Explain the gap.
# ```
#
# ````{solution} ch10-peek-mask
# :class: dropdown
#
# Train exactly as in section 7 (same seed, 120 steps) but pass the peeking mask as `tgt_mask`
# in training and, for each prefix length t, `np.tril(np.ones((t, t), bool), 1)` in greedy
# decoding:
#
# ```python
# peek = mt.tensor(np.tril(np.ones((LENGTH, LENGTH), bool), 1))
# logits = copier(src_ids, tgt_in, tgt_mask=peek)  # in the training loop
# ```
#
# | mask | loss at steps 9 / 49 / 119 | teacher-forced accuracy | greedy accuracy |
# |---|---|---|---|
# | causal | 1.99 / 0.110 / 0.0045 | 100% | 100% |
# | peeks one ahead | 1.90 / 0.058 / 0.0050 | 100% | 18.8% |
#
# With teacher forcing the loss falls at least as fast, faster in the middle: position t's
# answer is target t, and the decoder *input* at position t + 1 is exactly target t, so the
# model learns to read the answer off the next input, which is easier than finding it in the
# source through cross-attention. At generation that next input does not exist yet: the last
# position of the prefix has nothing ahead to peek at, the shortcut the model relies on is
# gone, and greedy decoding gets only 18.8% of the tokens right. A low teacher-forced loss
# proves nothing unless the mask matches what decoding can see.
# ````
#
# ```{exercise} Pre-LN, post-LN and depth
# :label: ch10-norm-first-depth
#
# Train the copier with `norm_first=True` and with a 6-layer stack each way. Which one still
# trains at lr = 3e-3 without a warm-up?
# ```
#
# ````{solution} ch10-norm-first-depth
# :class: dropdown
#
# Same data, seed 3, Adam at lr = 3e-3, 120 steps, `n_encoder_layers = n_decoder_layers = L`:
#
# | layers | LN | loss at steps 9 / 19 / 49 / 119 | greedy accuracy |
# |---|---|---|---|
# | 2 | post (paper) | 1.99 / 1.46 / 0.110 / 0.0045 | 100% |
# | 2 | pre | 1.77 / 1.17 / 0.054 / 0.0032 | 100% |
# | 6 | post (paper) | 2.08 / 1.88 / 1.611 / 0.177 | 94.3% |
# | 6 | pre | 1.80 / 1.37 / 0.059 / 0.0035 | 100% |
#
# Pre-LN trains at 6 layers as fast as at 2. The 6-layer post-LN model does not diverge on this
# small problem, but its loss is still 1.61 at step 49 and is still far behind
# after 120. In post-LN every residual sum passes through a LayerNorm, so the gradient to the
# lower layers must cross all of them, and at the start the large Adam steps on the
# unnormalised output make the upper layers' updates disproportionately large (Xiong et al.
# 2020); the paper's warm-up schedule (Chapter 11) exists for exactly this. Pre-LN keeps an
# identity path from the loss to every layer, so it needs no warm-up at this depth.
# ````
#
# ```{exercise} Reversing: the cross-attention pattern
# :label: ch10-reverse-attention
#
# Change the task to *reversing* the sequence. Plot (or print) the cross-attention weights of
# the last decoder layer after training: what pattern do you expect, and do you see it?
# ```
#
# ````{solution} ch10-reverse-attention
# :class: dropdown
#
# Use `targets = sources[:, ::-1].copy()` for both the decoder input (shifted behind `<bos>`)
# and the loss; the same 120 steps reach loss 0.0051 and 100% greedy accuracy. After one more
# forward pass, `copier.decoder.layers[-1].cross_attn.attention_weights` is (B, H, T, S). Output
# position t must fetch source position S − 1 − t, so we expect the **anti-diagonal**:
#
# ```python
# w = copier.decoder.layers[-1].cross_attn.attention_weights.numpy()  # (B, H, T, S)
# print([w[:, h].mean(axis=0).argmax(axis=-1).tolist() for h in range(w.shape[1])])
# # [[5, 4, 3, 2, 1, 0], [5, 4, 3, 2, 1, 0], [5, 4, 3, 2, 1, 0], [5, 4, 4, 3, 4, 4]]
# print(np.round(w.mean(axis=(0, 1)), 2))  # the anti-diagonal holds the largest entry of each row
# ```
#
# Three of the four heads put their largest weight on exactly the anti-diagonal; the fourth does
# something else. Averaged over heads and batch, the anti-diagonal is the largest entry of every
# row, but only 0.23–0.30, not 1: the model needs only *enough* weight on the right position
# to win the argmax, the earlier decoder layers also carry information, and nothing in the loss
# asks for sharp attention. (`minitransformer.viz.plot_attention` draws such a matrix as a
# heat map.)
# ````
