# %% setup
# Chapter 10's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

BOS = 1  # the decoder's start token; the symbols are 2 ... VOCAB - 1
VOCAB, LENGTH = 8, 5


def copy_batch(batch=32, seed=0):
    """Section 7's copy task, smaller: (sources, decoder inputs, targets), NumPy int arrays of
    shape (batch, LENGTH); the targets are the sources, the decoder inputs the targets shifted
    right behind BOS."""
    sources = np.random.default_rng(seed).integers(2, VOCAB, (batch, LENGTH))
    decoder_inputs = np.concatenate([np.full((batch, 1), BOS), sources[:, :-1]], axis=1)
    return sources, decoder_inputs, sources.copy()


def tiny_transformer(n_layers=1, d_model=16, norm_first=False):
    """A small nn.Transformer for the tasks above (n_layers in each stack, d_model / 8 heads,
    d_ff = 2 d_model, no dropout), initialised from mt.manual_seed(3)."""
    mt.manual_seed(3)
    return nn.Transformer(VOCAB, VOCAB, d_model=d_model, n_heads=d_model // 8,
                          n_encoder_layers=n_layers, n_decoder_layers=n_layers,
                          d_ff=2 * d_model, dropout=0.0, max_len=16, norm_first=norm_first)


def fit(model, sources, decoder_inputs, targets, steps, lr, tgt_mask=None):
    """Full-batch Adam on the cross-entropy of model(sources, decoder_inputs, tgt_mask=...)
    against targets, `steps` times (NumPy arrays in; tgt_mask a bool Tensor or None for
    causal). Returns the loss before each step, a list of floats."""
    optimizer = mt.optim.Adam(model.parameters(), lr=lr)
    src, tgt_in, tgt_out = mt.tensor(sources), mt.tensor(decoder_inputs), mt.tensor(targets)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(src, tgt_in, tgt_mask=tgt_mask), tgt_out)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# %% exercise ch10-unshared-count (2 points)
# unshared_parameters(vocab, d_model, d_ff, n_layers): the number of parameters of
#     nn.Transformer(vocab, vocab, d_model=d_model, n_encoder_layers=n_layers,
#     n_decoder_layers=n_layers, d_ff=d_ff) (post-LN; share_embeddings and tie_output off),
#     computed by hand from the sizes (an int; n_heads does not matter).
# saved_by_sharing: how many parameters share_embeddings=True, tie_output=True saves on the
#     base model (vocab 37,000, d_model 512, d_ff 2048, 6 layers), whose shared count is
#     63,119,496 (an int).
# BEGIN SOLUTION
def unshared_parameters(vocab, d_model, d_ff, n_layers):
    attention = 4 * d_model * d_model + 4 * d_model
    feed_forward = 2 * d_model * d_ff + d_ff + d_model
    norm = 2 * d_model
    encoder_layer = attention + feed_forward + 2 * norm
    decoder_layer = 2 * attention + feed_forward + 3 * norm
    # source and target embeddings, the output projection's weight, and its bias
    return n_layers * (encoder_layer + decoder_layer) + 3 * vocab * d_model + vocab


saved_by_sharing = unshared_parameters(37000, 512, 2048, 6) - 63_119_496
# END SOLUTION

# %% check ch10-unshared-count
for vocab, d_model, d_ff, n_layers in [(11, 8, 16, 1), (50, 16, 32, 2), (7, 24, 40, 3)]:
    model = nn.Transformer(vocab, vocab, d_model=d_model, n_heads=2, n_encoder_layers=n_layers,
                           n_decoder_layers=n_layers, d_ff=d_ff)
    mine = unshared_parameters(vocab, d_model, d_ff, n_layers)
    assert mine == model.num_parameters(), (
        f"unshared_parameters({vocab}, {d_model}, {d_ff}, {n_layers}) is {mine:,}, but that "
        f"nn.Transformer has {model.num_parameters():,} parameters (off by "
        f"{mine - model.num_parameters():+,}): count every layer's attention, feed-forward and "
        "LayerNorms, the source and the target embedding, and the output projection (weight "
        "and bias)")
assert saved_by_sharing == unshared_parameters(37000, 512, 2048, 6) - 63_119_496, (
    f"saved_by_sharing is {saved_by_sharing!r}: the unshared base model's count (from "
    "unshared_parameters) minus the shared one, 63,119,496")

# %% wrong ch10-unshared-count
def unshared_parameters(vocab, d_model, d_ff, n_layers):  # noqa: F811  (output layer forgotten)
    attention = 4 * d_model * d_model + 4 * d_model
    feed_forward = 2 * d_model * d_ff + d_ff + d_model
    encoder_layer = attention + feed_forward + 2 * 2 * d_model
    decoder_layer = 2 * attention + feed_forward + 3 * 2 * d_model
    return n_layers * (encoder_layer + decoder_layer) + 2 * vocab * d_model

# %% wrong ch10-unshared-count
def unshared_parameters(vocab, d_model, d_ff, n_layers):  # noqa: F811  (cross-attention left out)
    attention = 4 * d_model * d_model + 4 * d_model
    feed_forward = 2 * d_model * d_ff + d_ff + d_model
    layer = attention + feed_forward + 2 * 2 * d_model
    return 2 * n_layers * layer + 3 * vocab * d_model + vocab

# %% exercise ch10-peek-mask (3 points)
# Section 7's run, smaller: sources, decoder_inputs, targets = copy_batch() (32 sequences of
# LENGTH = 5), models from tiny_transformer() (one layer each), fit(..., steps=60, lr=1e-2).
# peek_mask(size): a (size, size) bool NumPy array, True on and below the diagonal and one
#     step above it: each position may also see the next token.
# greedy_tokens(model, sources, length, mask_fn=None): greedy decoding as in section 7, in
#     eval mode without a graph: start from BOS, `length` times append the argmax of the last
#     position's logits; when mask_fn is given, decode each prefix of length t with
#     tgt_mask=mt.tensor(mask_fn(t)) (None: causal). Returns the (B, length) generated
#     tokens, BOS left out, a NumPy int array.
# causal_model, peek_model: tiny_transformer()s trained with fit for 60 steps at lr 1e-2, the
#     first with the causal mask (tgt_mask=None), the second with mt.tensor(peek_mask(LENGTH)).
# causal_greedy, peek_greedy: the token accuracy (fraction of generated tokens equal to the
#     targets) of greedy_tokens on the training sources, with the mask each model was trained
#     with.
# peek_teacher_forced: peek_model's teacher-forced token accuracy: argmax of
#     peek_model(sources, decoder_inputs, tgt_mask=its mask) against the targets.
# low_loss_is_enough: True or False: does a low teacher-forced loss show that greedy
#     decoding will work, whatever the mask?
# BEGIN SOLUTION
def peek_mask(size):
    return np.tril(np.ones((size, size), dtype=bool), 1)


def greedy_tokens(model, sources, length, mask_fn=None):
    model.eval()
    with mt.no_grad():
        memory = model.encode(mt.tensor(sources))  # encode once
        generated = np.full((len(sources), 1), BOS)
        for _ in range(length):
            t = generated.shape[1]
            mask = None if mask_fn is None else mt.tensor(mask_fn(t))
            logits = model.project(model.decode(mt.tensor(generated), memory, tgt_mask=mask))
            next_ids = logits.numpy()[:, -1].argmax(axis=-1)  # the last position's prediction
            generated = np.concatenate([generated, next_ids[:, None]], axis=1)
    return generated[:, 1:]


sources, decoder_inputs, targets = copy_batch()
causal_model = tiny_transformer()
fit(causal_model, sources, decoder_inputs, targets, steps=60, lr=1e-2)
peek_model = tiny_transformer()
fit(peek_model, sources, decoder_inputs, targets, steps=60, lr=1e-2,
    tgt_mask=mt.tensor(peek_mask(LENGTH)))

causal_greedy = (greedy_tokens(causal_model, sources, LENGTH) == targets).mean()
peek_greedy = (greedy_tokens(peek_model, sources, LENGTH, peek_mask) == targets).mean()
with mt.no_grad():
    logits = peek_model(mt.tensor(sources), mt.tensor(decoder_inputs),
                        tgt_mask=mt.tensor(peek_mask(LENGTH)))
peek_teacher_forced = (logits.numpy().argmax(axis=-1) == targets).mean()
low_loss_is_enough = False  # the answer at t is the input at t + 1, absent when generating
# END SOLUTION

# %% check ch10-peek-mask
for T in (1, 4, 6):
    mask = np.asarray(peek_mask(T))
    rows, cols = np.indices((T, T))
    assert mask.shape == (T, T) and np.array_equal(mask.astype(bool), cols <= rows + 1), (
        f"peek_mask({T}) is\n{mask.astype(int)}\nbut query t should see keys 0 ... t + 1 "
        "(np.tril with k=1: the diagonal and one step above it)")
sources, decoder_inputs, targets = copy_batch()
with mt.no_grad():
    logits = peek_model.eval()(mt.tensor(sources), mt.tensor(decoder_inputs),
                               tgt_mask=mt.tensor(peek_mask(LENGTH)))
teacher_forced = (logits.numpy().argmax(axis=-1) == targets).mean()
assert teacher_forced > 0.9, (
    f"peek_model's teacher-forced accuracy is only {teacher_forced:.1%}: train a "
    "tiny_transformer() with fit(..., steps=60, lr=1e-2, tgt_mask=mt.tensor(peek_mask(LENGTH)))")
assert abs(peek_teacher_forced - teacher_forced) < 0.02, (
    f"peek_teacher_forced is {float(peek_teacher_forced):.3f}, but peek_model's "
    f"teacher-forced token accuracy with its mask is {teacher_forced:.3f}")
for name, model, mask_fn, reported in [("causal", causal_model, None, causal_greedy),
                                       ("peek", peek_model, peek_mask, peek_greedy)]:
    generated = np.asarray(greedy_tokens(model, sources, LENGTH, mask_fn))
    assert generated.shape == targets.shape, (
        f"greedy_tokens({name}_model, sources, {LENGTH}) has shape {generated.shape}, not "
        f"(B, length) = {targets.shape}: leave BOS out")
    accuracy = (generated == targets).mean()
    if name == "causal":
        assert accuracy > 0.85, (
            f"greedy decoding with causal_model gets only {accuracy:.1%} of the tokens right: "
            "append the argmax of the LAST position's logits, logits[:, -1], at every step "
            "(and train causal_model with fit(..., steps=60, lr=1e-2))")
    else:
        assert accuracy < 0.6 < teacher_forced, (
            f"peek_model decodes {accuracy:.1%} of the tokens right greedily (teacher-forced: "
            f"{teacher_forced:.1%}); train it with the peeking mask and decode each prefix of "
            "length t with mt.tensor(peek_mask(t))")
    assert abs(reported - accuracy) < 0.02, (
        f"{name}_greedy is {float(reported):.3f}, but greedy_tokens gives the {name} model a "
        f"token accuracy of {accuracy:.3f}")
assert low_loss_is_enough is False, (
    f"low_loss_is_enough is {low_loss_is_enough!r}, but your peek_model, teacher-forced "
    f"accuracy {teacher_forced:.1%}, decodes only {peek_greedy:.1%} of the tokens greedily: "
    "which decoder input does position t read its answer from, and does it exist yet when "
    "generating?")

# %% wrong ch10-peek-mask
def peek_mask(size):  # noqa: F811  (shifted the wrong way: the diagonal masked)
    return np.tril(np.ones((size, size), dtype=bool), -1)

# %% wrong ch10-peek-mask
def greedy_tokens(model, sources, length, mask_fn=None):  # noqa: F811  (the FIRST position read)
    model.eval()
    with mt.no_grad():
        memory = model.encode(mt.tensor(sources))
        generated = np.full((len(sources), 1), BOS)
        for _ in range(length):
            t = generated.shape[1]
            mask = None if mask_fn is None else mt.tensor(mask_fn(t))
            logits = model.project(model.decode(mt.tensor(generated), memory, tgt_mask=mask))
            generated = np.concatenate([generated, logits.numpy()[:, 0].argmax(-1)[:, None]],
                                       axis=1)
    return generated[:, 1:]

# %% wrong ch10-peek-mask
low_loss_is_enough = True  # 99% teacher-forced taken as proof

# %% exercise ch10-norm-first-depth (3 points)
# The exercise's 120-step runs, cut to 30 steps on a smaller model, still at lr = 3e-3 with
# no warm-up: sources, decoder_inputs, targets = copy_batch(batch=16);
# post_ln_model = tiny_transformer(n_layers=6, d_model=32) (the paper's post-LN) and
# pre_ln_model = tiny_transformer(n_layers=6, d_model=32, norm_first=True), each trained with
# fit(..., steps=30, lr=3e-3).
# post_ln_losses, pre_ln_losses: the lists of losses fit returns for each.
# trains_without_warmup: "post-LN" or "pre-LN", the one whose loss falls much further.
# BEGIN SOLUTION
sources, decoder_inputs, targets = copy_batch(batch=16)
post_ln_model = tiny_transformer(n_layers=6, d_model=32)
post_ln_losses = fit(post_ln_model, sources, decoder_inputs, targets, steps=30, lr=3e-3)
pre_ln_model = tiny_transformer(n_layers=6, d_model=32, norm_first=True)
pre_ln_losses = fit(pre_ln_model, sources, decoder_inputs, targets, steps=30, lr=3e-3)
trains_without_warmup = "pre-LN"  # an identity path from the loss to every layer
# END SOLUTION

# %% check ch10-norm-first-depth
for name, model, norm_first in [("post_ln_model", post_ln_model, False),
                                ("pre_ln_model", pre_ln_model, True)]:
    layers = [model.encoder.layers, model.decoder.layers]
    assert [len(stack) for stack in layers] == [6, 6], (
        f"{name} has {[len(stack) for stack in layers]} encoder and decoder layers, not 6 each")
    assert all(layer.norm_first == norm_first for stack in layers for layer in stack), (
        f"{name}'s layers should have norm_first={norm_first}")
    assert model.d_model == 32, f"{name} has d_model={model.d_model}, not 32"
for name, losses in [("post_ln_losses", post_ln_losses), ("pre_ln_losses", pre_ln_losses)]:
    assert len(losses) == 30, f"{name} has {len(losses)} losses, not one for each of 30 steps"
post_end, pre_end = post_ln_losses[-1], pre_ln_losses[-1]
assert pre_end < post_end, (
    f"after 30 steps your post-LN loss is {post_end:.3f} and your pre-LN loss {pre_end:.3f}: "
    "are the two lists the right way round (norm_first=True is pre-LN)?")
assert pre_end < 0.7 and post_end > 0.9, (
    f"after 30 steps the post-LN loss is {post_end:.3f} and the pre-LN loss {pre_end:.3f}; "
    "train each model with fit(model, *copy_batch(batch=16), steps=30, lr=3e-3), the models "
    "made by tiny_transformer(n_layers=6, d_model=32, norm_first=...)")
better = "pre-LN" if pre_end < post_end else "post-LN"
assert trains_without_warmup == better, (
    f"trains_without_warmup is {trains_without_warmup!r}, but your losses after 30 steps are "
    f"{post_end:.3f} (post-LN) and {pre_end:.3f} (pre-LN)")

# %% wrong ch10-norm-first-depth
post_ln_losses, pre_ln_losses = pre_ln_losses, post_ln_losses  # the two runs mixed up

# %% wrong ch10-norm-first-depth
trains_without_warmup = "post-LN"  # the paper's layout taken to be the robust one

# %% exercise ch10-reverse-attention (3 points)
# The reversing task, on a smaller model: sources come from copy_batch() (its first array).
# reverse_batch(sources) -> (decoder_inputs, targets): targets are the sources reversed along
#     the sequence, decoder_inputs the targets shifted right behind BOS (NumPy int arrays).
# expected_source(t, length): the source position that output position t must read when
#     reversing a sequence of `length` tokens (an int).
# reverser: tiny_transformer() trained on the reversing task with fit(..., steps=80,
#     lr=1e-2).
# mean_cross_weights: a (LENGTH, LENGTH) NumPy array, the cross-attention weights of
#     reverser's LAST decoder layer (decoder.layers[-1].cross_attn.attention_weights, shape
#     (B, H, T, S)) after one more forward pass on the training batch in eval mode without a
#     graph, averaged over the batch and the heads.
# BEGIN SOLUTION
def reverse_batch(sources):
    targets = np.asarray(sources)[:, ::-1].copy()
    decoder_inputs = np.concatenate([np.full((len(targets), 1), BOS), targets[:, :-1]], axis=1)
    return decoder_inputs, targets


def expected_source(t, length):
    return length - 1 - t  # the anti-diagonal


sources = copy_batch()[0]
decoder_inputs, targets = reverse_batch(sources)
reverser = tiny_transformer()
fit(reverser, sources, decoder_inputs, targets, steps=80, lr=1e-2)
reverser.eval()
with mt.no_grad():
    reverser(mt.tensor(sources), mt.tensor(decoder_inputs))
weights = reverser.decoder.layers[-1].cross_attn.attention_weights.numpy()  # (B, H, T, S)
mean_cross_weights = weights.mean(axis=(0, 1))  # (T, S)
# END SOLUTION

# %% check ch10-reverse-attention
sources = copy_batch()[0]
decoder_inputs, targets = (np.asarray(a) for a in reverse_batch(sources))
assert targets.shape == sources.shape and np.array_equal(targets[:, ::-1], sources), (
    "reverse_batch's targets should be the sources read backwards (each row reversed), "
    f"shape {sources.shape}")
assert decoder_inputs.shape == sources.shape and np.all(decoder_inputs[:, 0] == BOS) and \
    np.array_equal(decoder_inputs[:, 1:], targets[:, :-1]), (
        "reverse_batch's decoder inputs should be BOS followed by the targets without their "
        "last token (teacher forcing: input t is target t - 1)")
for S in (3, 5, 8):
    row = np.arange(10, 10 + S)  # a source of length S
    picks = [int(row[int(expected_source(t, S))]) for t in range(S)]
    assert picks == row[::-1].tolist(), (
        f"expected_source(t, {S}) for t = 0..{S - 1} is "
        f"{[expected_source(t, S) for t in range(S)]}: output t of a reversed sequence is "
        "the source token at which position?")
with mt.no_grad():
    logits = reverser.eval()(mt.tensor(sources), mt.tensor(decoder_inputs))
accuracy = (logits.numpy().argmax(axis=-1) == targets).mean()
assert accuracy > 0.9, (
    f"reverser gets only {accuracy:.1%} of the reversed tokens right (teacher-forced): train "
    "tiny_transformer() with fit(reverser, sources, decoder_inputs, targets, steps=80, lr=1e-2)")
w = np.asarray(mean_cross_weights, dtype=np.float64)
assert w.shape == (LENGTH, LENGTH), (
    f"mean_cross_weights has shape {w.shape}, not (T, S) = ({LENGTH}, {LENGTH}): average the "
    "(B, H, T, S) weights over axes 0 and 1")
assert np.allclose(w.sum(axis=-1), 1.0, atol=1e-4), (
    f"the rows of mean_cross_weights sum to {np.round(w.sum(axis=-1), 3)}, not 1: average "
    "over the batch and the heads, not over the source positions")
with mt.no_grad():
    reverser(mt.tensor(sources), mt.tensor(decoder_inputs))
assert np.allclose(
    w, reverser.decoder.layers[-1].cross_attn.attention_weights.numpy().mean(axis=(0, 1)),
    atol=1e-5), ("mean_cross_weights differs from the last decoder layer's cross-attention "
                 "weights on the training batch, averaged over batch and heads")
for t in range(LENGTH):
    assert int(w[t].argmax()) == int(expected_source(t, LENGTH)), (
        f"output position {t} attends most to source position {int(w[t].argmax())}, but "
        f"expected_source({t}, {LENGTH}) is {expected_source(t, LENGTH)}: which source token "
        f"does output {t} of a reversed sequence copy?")

# %% wrong ch10-reverse-attention
def expected_source(t, length):  # noqa: F811  (the copy task's diagonal)
    return t

# %% wrong ch10-reverse-attention
def reverse_batch(sources):  # noqa: F811  (the decoder input not shifted behind BOS)
    targets = np.asarray(sources)[:, ::-1].copy()
    return targets.copy(), targets
