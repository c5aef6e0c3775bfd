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
# # Chapter 12 — The copy task, end to end
#
# Chapter 10 taught a tiny Transformer to copy fixed-length sequences with a hand-made batch. Here
# we do it the way a real sequence-to-sequence run is done: sequences of *different* lengths from
# `mt.data.copy_task`, batches built by `mt.data.collate_seq2seq` (with `<bos>`, `<eos>`, padding
# and masks), a label-smoothed loss that ignores padding, the `train.Trainer` loop with a
# warm-up schedule, and finally decoding of held-out sequences with `mt.decoding.greedy` and
# `mt.decoding.beam_search`. The copy task is the "hello world" of seq2seq: if a model cannot
# learn it, something in the pipeline is broken.
#
# **Learning objectives.** After this chapter you can
#
# 1. explain how `collate_seq2seq` turns (source, target) pairs into decoder inputs, targets and
#    masks;
# 2. write a seq2seq loss with label smoothing and `ignore_index=mt.data.IGNORE_INDEX`;
# 3. train with `Trainer` and `TrainConfig`;
# 4. decode with greedy search and beam search, and measure exact-match accuracy.

# %%
import importlib.util
import os
import time

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import decoding, nn, train
from minitransformer.data import BOS_ID, EOS_ID, IGNORE_INDEX, PAD_ID

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # a shorter run when set
STEPS = 400 if FAST else 800
VOCAB, MIN_LEN, MAX_LEN = 16, 3, 8
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# %% [markdown]
# ## 1. The data
#
# `copy_task(n, vocab_size)` returns pairs (source, target) with target == source: random ids from
# 7 to `vocab_size − 1` (ids 0–6 are the special tokens). Training and test sets come from
# different seeds, so the test sequences are (almost all) new to the model.

# %%
train_pairs = mt.data.copy_task(2000, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=0)
test_pairs = mt.data.copy_task(100, vocab_size=VOCAB, min_len=MIN_LEN, max_len=MAX_LEN, seed=1)
print("a pair:", train_pairs[0])
print("special ids: pad", PAD_ID, "bos", BOS_ID, "eos", EOS_ID)
assert all(src == tgt for src, tgt in train_pairs)
assert min(min(src) for src, _ in train_pairs) >= mt.data.N_SPECIAL

# %% [markdown]
# ## 2. A batch: shifting and masks
#
# For teacher forcing the decoder reads `<bos> y` and must predict `y <eos>`: the same sequence
# shifted by one. `<eos>` teaches the model when to stop. Rows are padded to the longest: sources
# and decoder inputs with `<pad>`, targets with `IGNORE_INDEX` (−100) so the loss skips them. The
# masks say what may be attended (True = yes): `src_mask` (B, 1, 1, S) hides source padding,
# `tgt_mask` (B, 1, T, T) is causal *and* hides target padding.

# %%
batch = mt.data.collate_seq2seq([([7, 8, 9], [7, 8, 9]), ([10, 11], [10, 11])])
print("src\n", batch.src.numpy())
print("tgt_in\n", batch.tgt_in.numpy())
print("tgt_out\n", batch.tgt_out.numpy())
assert batch.tgt_in.numpy().tolist() == [[BOS_ID, 7, 8, 9], [BOS_ID, 10, 11, PAD_ID]]
assert batch.tgt_out.numpy().tolist() == [[7, 8, 9, EOS_ID], [10, 11, EOS_ID, IGNORE_INDEX]]
assert batch.src_mask.shape == (2, 1, 1, 3) and batch.tgt_mask.shape == (2, 1, 4, 4)
assert batch.src_mask.numpy()[1, 0, 0].tolist() == [True, True, False]
assert not batch.tgt_mask.numpy()[0, 0, 0, 1]  # position 0 cannot see position 1

# %% [markdown]
# ## 3. Model and loss
#
# A small encoder-decoder: d_model 32, two layers each side. The loss is cross-entropy on the
# decoder's logits with **label smoothing** ε = 0.1 (the paper's value): the target distribution
# puts 1 − ε on the right token and spreads ε over all tokens, which discourages
# over-confidence. The loss function returns the loss and the number of real target tokens, which
# the Trainer uses to report tokens per second.

# %%
mt.manual_seed(0)
model = nn.Transformer(VOCAB, VOCAB, d_model=32, n_heads=4, n_encoder_layers=2,
                       n_decoder_layers=2, d_ff=64, dropout=0.0, max_len=32)
print(f"{model.num_parameters():,} parameters")


def seq2seq_loss(model, batch):
    # BEGIN SOLUTION
    logits = model(batch.src, batch.tgt_in, src_mask=batch.src_mask, tgt_mask=batch.tgt_mask)
    loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=IGNORE_INDEX, label_smoothing=0.1)
    # END SOLUTION
    return loss, int((batch.tgt_out.numpy() != IGNORE_INDEX).sum())


loss, n_tokens = seq2seq_loss(model, batch)
print(f"untrained loss {loss.item():.3f} (ln V = {np.log(VOCAB):.3f}), real tokens {n_tokens}")
assert n_tokens == 7  # the -100 of the second row is not counted

# %% [markdown]
# ## 4. Training with the Trainer
#
# `Trainer(model, optimizer, loss_fn, batches, config, schedule)` runs `config.steps` updates:
# each sets the learning rate from the schedule, runs `loss_fn` on the next batch, back-propagates,
# clips the gradient norm (`grad_clip`), steps and logs. `batches(epoch)` returns the batches of
# one epoch; a `DataLoader` reshuffles for every epoch.

# %%
loader = mt.data.DataLoader(train_pairs, batch_size=32, collate_fn=mt.data.collate_seq2seq,
                            shuffle=True, seed=0)


def batches(epoch):
    loader.set_epoch(epoch)
    return loader


optimizer = mt.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
schedule = mt.optim.warmup_cosine(3e-3, warmup=30, total=STEPS, min_lr=3e-4)
config = train.TrainConfig(steps=STEPS, log_every=50, grad_clip=1.0, progress=False)
trainer = train.Trainer(model, optimizer, seq2seq_loss, batches, config, schedule=schedule)
start = time.perf_counter()
history = trainer.fit()
print(f"trained {STEPS} steps in {time.perf_counter() - start:.1f} s")
for row in history:
    print(f"step {row['step']:>4}  loss {row['loss']:.3f}  lr {row['lr']:.1e}")
# With ε = 0.1 the smallest possible loss is not 0 but the entropy of the smoothed target (~0.5).
assert history[-1]["loss"] < 0.8, (
    f"the final training loss should be < 0.8, got {history[-1]['loss']:.3f}: seq2seq_loss "
    "should run model(src, tgt_in, src_mask=..., tgt_mask=...) and score the logits against "
    "tgt_out with ignore_index=IGNORE_INDEX and label_smoothing=0.1"
)

# %% [markdown]
# The same history as a picture: look at the loss falling fastest early, while the learning rate
# is high, and levelling off not at zero but near the floor that label smoothing sets (~0.5).

# %%
if HAS_MATPLOTLIB:
    mt.viz.show(mt.viz.plot_history(history, "ch12_history.png", title="copy task"))
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# ## 5. Decoding held-out sequences
#
# At test time there is no target to feed in. `greedy` starts each row from `<bos>`, appends the
# most likely token and stops at `<eos>` (or `max_len`); it returns the generated ids without
# `<bos>`, ending with `<eos>` when generation stopped on it. **Exact match** counts an output as
# right only if it is the target followed by `<eos>`: every token right, and the right length.

# %%
test_batch = mt.data.collate_seq2seq(test_pairs)
greedy_out = decoding.greedy(model, test_batch.src, max_len=MAX_LEN + 2, bos_id=BOS_ID,
                                eos_id=EOS_ID)
greedy_acc = np.mean([out == tgt + [EOS_ID] for out, (_, tgt) in zip(greedy_out, test_pairs)])
print("source: ", test_pairs[0][0])
print("greedy: ", greedy_out[0])
print(f"greedy exact match: {greedy_acc:.0%}")
assert greedy_acc >= 0.8, (
    f"greedy decoding copies only {greedy_acc:.0%} of the test sequences (need ≥ 80%): the "
    "model did not learn to copy; seq2seq_loss should score model(src, tgt_in, masks) against "
    "tgt_out (the target shifted by one), not tgt_in, with ignore_index=IGNORE_INDEX"
)

# %% [markdown]
# **Beam search** keeps the `beam_size` best partial outputs at every step, scored by their total
# log-probability (divided by length^`length_penalty`), and returns the best finished one. On a
# task this easy the model is confident, so beam search mostly agrees with greedy; on translation
# (chapter 16) it helps more. It is slower: it decodes one source at a time.

# %%
beam_out = decoding.beam_search(model, test_batch.src[:20], beam_size=3,
                                   max_len=MAX_LEN + 2, bos_id=BOS_ID, eos_id=EOS_ID)
beam_acc = np.mean([out == tgt + [EOS_ID] for out, (_, tgt) in zip(beam_out, test_pairs[:20])])
print(f"beam search exact match on 20 sequences: {beam_acc:.0%}")
assert beam_acc >= 0.8, (
    f"beam search copies only {beam_acc:.0%} of 20 sequences (need ≥ 80%): the model did not "
    "learn to copy; seq2seq_loss should score model(src, tgt_in, masks) against tgt_out, "
    "with ignore_index=IGNORE_INDEX"
)

# %% [markdown]
# ## Summary
#
# - `copy_task` makes (source, target) pairs with ids above the 7 special ones.
# - `collate_seq2seq` pads, builds decoder input `<bos> y` and target `y <eos>` (padding −100),
#   and the padding and causal masks.
# - The loss is label-smoothed cross-entropy that ignores `IGNORE_INDEX`; with smoothing its floor
#   is above zero.
# - `Trainer` + `TrainConfig` run the loop: schedule, gradient clipping, logging.
# - `greedy` and `beam_search` decode from `<bos>` to `<eos>`; exact match is the strict metric.
#
# ## Exercises
#
# ```{exercise} Reverse instead of copy
# :label: ch12-reverse
#
# Replace `copy_task` by `mt.data.reverse_task`. Does the model need more steps? Why might it?
# ```
#
# ```{solution} ch12-reverse
# :class: dropdown
#
# Change the two data lines to `mt.data.reverse_task(...)` with the same arguments. The logged
# (smoothed) loss, with this chapter's seeds and the full-mode 800 steps:
#
# | task | step 150 | step 200 | step 300 | step 400 | step 800 | greedy exact match |
# |---|---|---|---|---|---|---|
# | copy | 0.823 | 0.705 | 0.590 | 0.575 | 0.568 | 100% |
# | reverse | 0.950 | 0.773 | 0.656 | 0.594 | 0.570 | 100% |
#
# Reversing lags a little in the middle of training and catches up completely; with the
# fast-mode 400 steps both reach 99% exact match (reverse: loss 0.605 against 0.584). So on
# sequences this short it needs only slightly more steps. Why it might need more: to copy, output
# position t attends to source position t, a fixed alignment that the positional codes make
# easy (equal positions have the largest code dot product, Chapter 9). To reverse, position t
# must attend to S − 1 − t, which depends on each sequence's own length S (3 to 8 here), so the
# model must first locate the end of the source (where the padding starts) and count back
# from it; the alignment changes from batch row to batch row.
# ```
#
# ```{exercise} Longer than in training
# :label: ch12-longer
#
# Test on sequences longer than any seen in training (`min_len=MAX_LEN + 1`). What goes wrong?
# ```
#
# ````{solution} ch12-longer
# :class: dropdown
#
# ```python
# long_pairs = mt.data.copy_task(100, vocab_size=VOCAB, min_len=MAX_LEN + 1, max_len=MAX_LEN + 4,
#                                seed=2)
# long_batch = mt.data.collate_seq2seq(long_pairs)
# out = decoding.greedy(model, long_batch.src, max_len=MAX_LEN + 8, bos_id=BOS_ID, eos_id=EOS_ID)
# print(np.mean([o == t + [EOS_ID] for o, (_, t) in zip(out, long_pairs)]))
# ```
#
# Trained for the full-mode 800 steps, the model copies 100% of the test set, but only **5%**
# of the sequences of 9 to 12 tokens exactly, and **0%** of those of 12 to 16. Typical outputs:
#
#     source [13, 15, 12, 15, 14, 15, 11, 7, 7, 12, 14, 12]
#     output [13, 15, 12, 15, 14, 15, 11, 7, <eos>]
#
# It copies the first eight tokens and then stops: 93% (lengths 9–12) and 98% (12–16) of the
# outputs are too short, 8.4 and 8.8 tokens on average. It never saw an `<eos>` later than
# position 8, nor a decoder position beyond 8, so "stop after about eight" is what it learned.
# The positional codes of positions 9 and up exist (the sinusoids are defined everywhere) but
# the layers were never trained on them, so even the first eight tokens go wrong more often on
# the longest inputs (only 36% of the 12–16 outputs have all of their first eight right).
# Length generalisation is a known weakness of Transformers trained on short sequences.
# ````
#
# ```{exercise} No label smoothing
# :label: ch12-no-smoothing
#
# Train without label smoothing. Compare the final loss and the test accuracy.
# ```
#
# ```{solution} ch12-no-smoothing
# :class: dropdown
#
# Set `label_smoothing=0.0` in `seq2seq_loss`. The logged loss falls to **0.001** after 800
# steps, against **0.568** with ε = 0.1, but the two numbers measure different things: with
# smoothing the loss cannot go below the entropy of the smoothed target, which for V = 16 is
# −(0.90625 ln 0.90625 + 15 · 0.00625 ln 0.00625) = 0.565, and the smoothed run sits right at that
# floor. Test exact match is **100% for both**: the copy task is easy enough that smoothing
# neither helps nor hurts accuracy. What changes is confidence: the plain cross-entropy on the
# test set (teacher-forced, no smoothing) is 0.0006 for the unsmoothed model and 0.10 for the
# smoothed one, which keeps about 0.9 on the right token by design. On harder tasks (the paper's
# translation) that reluctance to be certain improved BLEU, at some cost in perplexity.
# ```
#
# ```{exercise} Which mask does the decoder need?
# :label: ch12-no-tgt-mask
#
# Remove `tgt_mask` from the loss function. What does `nn.Transformer` use when `tgt_mask` is
# None, and does anything change? Then pass an all-True (T, T) mask instead, so that every
# position sees the whole target. Training loss drops fast; what happens at decoding?
# ```
#
# ```{solution} ch12-no-tgt-mask
# :class: dropdown
#
# `tgt_mask=None` means **causal** (Chapter 10), so removing it changes almost nothing: over
# the full-mode 800 steps the loss curve is the same to two decimals for the first 150 steps
# and ends at 0.568, and greedy exact match is 100%. The only difference is that the padded
# positions are no longer hidden from the target side; but padding comes at the end, which
# causality already hides from every real position, and the padded positions' own predictions
# are ignored by the loss.
#
# With `tgt_mask=mt.tensor(np.ones((T, T), bool))` (T = `batch.tgt_in.shape[1]`) every position
# sees the next decoder input, which *is* its target: the loss reaches 0.668 at step 150
# (0.823 causal) and the smoothing floor 0.57 by step 300. But greedy decoding gets **0%** exact
# match: at generation the next token does not exist yet, so the model has to answer from the
# source for the first time. Evaluated teacher-forced with the causal mask, its test
# cross-entropy is 3.36, worse than guessing uniformly among 16 tokens (ln 16 = 2.77). The
# model learned to look ahead instead of to copy from the source.
# ```
